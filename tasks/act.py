"""The one write path: every state change a playbook makes goes through `apply_plan`.

For each decision, in this order (DESIGN.md, "One write path"):
1. a dry run writes nothing and records `would_apply`;
2. the run's blast-radius limit is checked before the first write: a plan larger than
   `max_actions` is refused whole unless it was approved (the flow pauses for approval when it
   runs from a deployment, and fails otherwise);
3. the intent goes to the ledger, then the incident's current state is read again: a decision
   already carried out is `already_done` (a re-run never acts twice), one whose precondition no
   longer holds (a human changed the incident) is `state_changed`;
4. the call is made (a 409 is read as "already done"), then the note that explains it, with a
   marker holding the decision id, so a re-run finds it and never writes it twice;
5. the result goes to the ledger. One incident's failure is recorded and the others go on.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tasks.decide.identity import normalise_email
from tasks.plan import Action, Decision, Outcome, Plan, Result

logger = logging.getLogger(__name__)

NOTE_MARKER = "[gg-remediation {playbook} decision {decision_id}]"
OPEN = ("TRIGGERED", "ASSIGNED")


class BlastRadiusExceeded(RuntimeError):
    """The plan holds more writes than the run may make without approval."""


def marker(decision: Decision) -> str:
    return NOTE_MARKER.format(playbook=decision.playbook, decision_id=decision.decision_id)


def note_text(decision: Decision, body: str | None = None) -> str:
    text = body if body is not None else f"{decision.evidence}"
    return f"{text.strip()}\n\n{marker(decision)}"


def check_blast_radius(plan: Plan, max_actions: int, *, approved: bool = False) -> None:
    if max_actions < 0:
        raise ValueError("max_actions must be 0 or more")
    if len(plan) > max_actions and not approved:
        raise BlastRadiusExceeded(
            f"The plan holds {len(plan)} writes, above this run's limit of {max_actions}: "
            "nothing was written. Raise max_actions, or run it from a deployment to approve it."
        )


def already_done(decision: Decision, incident: Any) -> bool:
    """True when the incident already is as the decision wants it."""
    action, args, status = decision.action, decision.arguments, incident.status
    if action is Action.ASSIGN:
        target = normalise_email(args.get("email"))
        if target:
            return status == "ASSIGNED" and normalise_email(incident.assignee_email) == target
        return status == "ASSIGNED" and incident.assignee_id == args.get("member_id")
    if action is Action.UNASSIGN:
        return status == "TRIGGERED" and not incident.assignee_id and not incident.assignee_email
    if action is Action.RESOLVE:
        return status == "RESOLVED"
    if action is Action.IGNORE:
        return status == "IGNORED"
    if action is Action.REOPEN:
        return status in OPEN
    if action is Action.SHARE:
        return bool(getattr(incident, "share_url", None))
    return False  # NOTE: decided by the marker alone


def precondition_holds(decision: Decision, incident: Any) -> bool:
    pre = decision.precondition
    if pre.statuses and incident.status not in pre.statuses:
        return False
    if pre.check_assignee:
        return normalise_email(incident.assignee_email) == normalise_email(pre.assignee_email)
    return True


def _perform(client: Any, decision: Decision) -> None:
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


def _has_note(client: Any, decision: Decision) -> bool:
    tag = marker(decision)
    for note in client.notes(decision.incident_id, search=decision.decision_id):
        if tag in (note.comment or ""):
            return True
    return False


NOTE_TRIES = 3


def _ensure_note(client: Any, decision: Decision, body: str | None, *, check_first: bool) -> None:
    from clients.gitguardian import ConnectionFailed, ServerError

    if check_first and _has_note(client, decision):
        return
    for attempt in range(NOTE_TRIES):
        # The client never repeats a note after a 5xx or a lost connection (the first try may
        # have landed): look for our marker before trying again, so a note is never doubled.
        if attempt and _has_note(client, decision):
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


def apply_one(
    decision: Decision,
    *,
    client: Any,
    ledger: Any,
    run_id: str,
    note: Callable[[Decision], str] | None = None,
) -> Outcome:
    from clients.gitguardian import Conflict

    intent_id = ledger.record_intent(run_id, decision)
    body = note(decision) if note else None
    try:
        current = client.incident(decision.incident_id)
        if already_done(decision, current):
            _ensure_note(client, decision, body, check_first=True)
            outcome = Outcome(decision, Result.ALREADY_DONE, "the incident already was as decided")
        elif decision.action is Action.NOTE:
            if _has_note(client, decision):
                outcome = Outcome(decision, Result.ALREADY_DONE, "the note already exists")
            else:
                _ensure_note(client, decision, body, check_first=False)
                outcome = Outcome(decision, Result.APPLIED)
        elif not precondition_holds(decision, current):
            outcome = Outcome(
                decision,
                Result.STATE_CHANGED,
                f"now {current.status}, assignee {current.assignee_email or 'none'}",
            )
        else:
            try:
                _perform(client, decision)
                _ensure_note(client, decision, body, check_first=False)
                outcome = Outcome(decision, Result.APPLIED)
            except Conflict as exc:
                _ensure_note(client, decision, body, check_first=True)
                outcome = Outcome(decision, Result.ALREADY_DONE, f"409: {exc.detail}")
    except Exception as exc:  # noqa: BLE001 - one incident's failure never stops the others
        logger.warning("incident %s: %s failed: %s", decision.incident_id, decision.action.value, error_detail(exc))
        outcome = Outcome(decision, Result.FAILED, error_detail(exc))
    ledger.record_result(intent_id, outcome.result.value, outcome.detail)
    return outcome


def decision_from_row(row: dict[str, Any]) -> Decision | None:
    """A decision as the ledger recorded it (its precondition is not recorded: it is only
    used to tell whether the incident already is as decided)."""
    try:
        decision = Decision(row["playbook"], int(row["incident_id"]), Action(row["action"]),
                            dict(row["arguments"]), str(row["reason"]), str(row["evidence"]))
    except (KeyError, ValueError, TypeError):
        return None
    return decision if decision.decision_id == row["decision_id"] else None


def finish_one(decision: Decision, *, client: Any, ledger: Any, run_id: str) -> Outcome:
    """An earlier run's decision that never came to an end (it failed, or the process died
    between the write and its note) and that this run's plan no longer holds.

    Nothing is written again here: this run's plan does not want the write. When the incident
    already is as decided, the note that explains it is made sure of (found by its marker, or
    written with the recorded evidence); otherwise the decision is closed as state_changed.
    """
    intent_id = ledger.record_intent(run_id, decision)
    try:
        current = client.incident(decision.incident_id)
        if decision.action is Action.NOTE:
            done = _has_note(client, decision)
        else:
            done = already_done(decision, current)
            if done:
                _ensure_note(client, decision, None, check_first=True)
        if done:
            outcome = Outcome(decision, Result.ALREADY_DONE, "an earlier run's decision, finished")
        else:
            outcome = Outcome(decision, Result.STATE_CHANGED,
                              f"an earlier run's decision, no longer planned: now {current.status}")
    except Exception as exc:  # noqa: BLE001 - recorded; the next run tries again
        logger.warning("incident %s: finishing %s failed: %s", decision.incident_id,
                       decision.action.value, error_detail(exc))
        outcome = Outcome(decision, Result.FAILED, error_detail(exc))
    ledger.record_result(intent_id, outcome.result.value, outcome.detail)
    return outcome


def unfinished_decisions(ledger: Any, playbook: str, planned: Iterable[Decision]) -> list[Decision]:
    """Earlier runs' unfinished decisions that `planned` does not hold again."""
    rows = getattr(ledger, "unfinished", None)
    if rows is None:
        return []
    again = {d.decision_id for d in planned}
    found = (decision_from_row({**row, "playbook": playbook}) for row in rows(playbook))
    return [d for d in found if d is not None and d.decision_id not in again]


def apply_decisions(
    decisions: Sequence[Decision],
    *,
    client: Any,
    ledger: Any,
    run_id: str,
    dry_run: bool,
    note: Callable[[Decision], str] | None = None,
    workers: int = 4,
) -> list[Outcome]:
    """Apply a chunk of an already limit-checked plan. Order of outcomes = order of decisions."""
    if dry_run:
        return [Outcome(d, Result.WOULD_APPLY) for d in decisions]

    def in_order(group: list[int]) -> list[tuple[int, Outcome]]:
        # Decisions on one incident (assign, then share) run in plan order, in one thread.
        return [
            (i, apply_one(decisions[i], client=client, ledger=ledger, run_id=run_id, note=note))
            for i in group
        ]

    groups: dict[int, list[int]] = {}
    for index, decision in enumerate(decisions):
        groups.setdefault(decision.incident_id, []).append(index)
    if workers <= 1 or len(groups) <= 1:
        done = [pair for group in groups.values() for pair in in_order(group)]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="act") as pool:
            done = [pair for pairs in pool.map(in_order, groups.values()) for pair in pairs]
    return [outcome for _, outcome in sorted(done, key=lambda pair: pair[0])]


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
