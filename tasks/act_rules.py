"""The write path's rules (tasks/act.py): what an incident's state says about a decision, and
the calls that carry a decision out.

`as_decided`, `made_by`, `precondition_holds` and `describe` are pure: they read an incident
(a GitGuardian model, or anything with its fields) and a decision. `perform`, `ensure_note` and
`has_note` are the API calls, made only from the writer (tasks/act_writer.py) under the lease.
`error_detail` is how a failure is written into outcomes and the ledger. No Prefect.
"""
from __future__ import annotations

from typing import Any

from clients.models import OPEN_STATUSES
from tasks.decide.identity import normalise_email
from tasks.decide.notes import marker, note_text
from tasks.decide.plan import Action, Decision

NOTE_TRIES = 3


# ------------------------------------------------------------------ what the incident says

def as_decided(decision: Decision, incident: Any) -> bool:
    """True when the incident already is as the decision wants it (whoever made it so)."""
    action, args, status = decision.action, decision.arguments, incident.status
    if action is Action.ASSIGN:
        target = normalise_email(args.get("email"))
        if target:
            return status == "ASSIGNED" and normalise_email(incident.assignee_email) == target
        return status == "ASSIGNED" and incident.assignee_id == args.get("member_id")
    if action is Action.UNASSIGN:
        return status == "TRIGGERED" and not incident.assignee_id and not incident.assignee_email
    if action is Action.RESOLVE:
        wanted = args.get("secret_revoked")
        return status == "RESOLVED" and (wanted is None
                                         or bool(incident.secret_revoked) == bool(wanted))
    if action is Action.IGNORE:
        return status == "IGNORED" and incident.ignore_reason == args.get("ignore_reason")
    if action is Action.REOPEN:
        return status in OPEN_STATUSES
    if action is Action.SHARE:
        return bool(getattr(incident, "share_url", None))
    return False  # NOTE: decided by the marker alone


def made_by(decision: Decision, incident: Any, token_id: str | None) -> str:
    """'us', 'other' or 'unknown': who made the incident as it is, where the API says who.

    Only closures name their actor (`ignorer_*`, `resolver_*`); for the rest the ledger's
    earlier attempts decide (see `Writer._carry_out`, tasks/act_writer.py).
    """
    if decision.action is Action.IGNORE:
        token, member = incident.ignorer_api_token_id, incident.ignorer_id
    elif decision.action is Action.RESOLVE:
        token, member = incident.resolver_api_token_id, incident.resolver_id
    else:
        return "unknown"
    if token and token_id:
        return "us" if token == token_id else "other"
    if member is not None and not token:
        return "other"  # a person, not a token
    return "unknown"


def precondition_holds(decision: Decision, incident: Any) -> bool:
    pre = decision.precondition
    if pre.statuses and incident.status not in pre.statuses:
        return False
    if pre.check_assignee:
        return normalise_email(incident.assignee_email) == normalise_email(pre.assignee_email)
    return True


def describe(incident: Any) -> str:
    """The incident's state in words, for outcome details."""
    text = f"now {incident.status}, assignee {incident.assignee_email or 'none'}"
    if incident.status == "IGNORED":
        who = "a token" if incident.ignorer_api_token_id else "a person"
        text += f", ignored as {incident.ignore_reason} by {who}"
    elif incident.status == "RESOLVED":
        who = "a token" if incident.resolver_api_token_id else "a person"
        text += f", resolved by {who}"
    return text


# ------------------------------------------------------------------ the calls

def perform(client: Any, decision: Decision) -> None:
    args, incident_id = decision.arguments, decision.incident_id
    match decision.action:
        case Action.ASSIGN:
            client.assign(
                incident_id,
                email=args.get("email"),
                member_id=args.get("member_id"),
                send_email=bool(args.get("send_email", True)),
            )
        case Action.UNASSIGN:
            client.unassign(incident_id)
        case Action.RESOLVE:
            client.resolve(incident_id, secret_revoked=bool(args["secret_revoked"]))
        case Action.IGNORE:
            client.ignore(incident_id, reason=args["ignore_reason"])
        case Action.REOPEN:
            client.reopen(incident_id)
        case Action.SHARE:
            # The answer holds the share URL, a secret: it is dropped here, never logged or stored.
            client.share(
                incident_id,
                auto_healing=bool(args.get("auto_healing", False)),
                feedback_collection=bool(args.get("feedback_collection", True)),
                lifespan_hours=int(args.get("lifespan_hours", 0)),
            )
        case Action.NOTE:
            pass
        case _:
            raise ValueError(f"unknown action {decision.action!r}")


def has_note(client: Any, decision: Decision) -> bool:
    tag = marker(decision)
    for note in client.notes(decision.incident_id, search=decision.decision_id):
        if tag in (note.comment or ""):
            return True
    return False


def ensure_note(client: Any, decision: Decision, body: str | None, *, check_first: bool) -> None:
    from clients.gitguardian import ConnectionFailed, ServerError

    if check_first and has_note(client, decision):
        return
    for attempt in range(NOTE_TRIES):
        # The client never repeats a note after a 5xx or a lost connection (the first try may
        # have landed): look for our marker before trying again, so a note is never doubled.
        if attempt and has_note(client, decision):
            return
        try:
            client.add_note(decision.incident_id, note_text(decision, body))
            return
        except (ServerError, ConnectionFailed):
            if attempt == NOTE_TRIES - 1:
                raise


def error_detail(exc: BaseException) -> str:
    """A failure's description for tables and the ledger: type, status and the server's detail.

    Our exceptions never hold the key or a share URL; other exceptions are reduced to their type.
    """
    from clients.gitguardian import GitGuardianError

    if isinstance(exc, GitGuardianError):
        return str(exc)[:500]
    return type(exc).__name__

