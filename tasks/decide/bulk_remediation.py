"""Ad-hoc bulk remediation: one action, with one reason, on a filtered set of incidents. Pure.

The request is one pydantic model (`BulkRequest`) so the Prefect UI shows a typed form: a
selection (the API's incident filters plus client-side conditions the API lacks: its model and
check are in tasks/decide/bulk_selection.py, with the choices made there), an action with its
arguments, and a mandatory reason that becomes the note on every incident.

Choices documented here because the issue left them open:
- An incident already as the action wants it (resolve a resolved one, reopen an open one) is
  skipped as `already_done`, so a re-run plans nothing new. Writes check, at write time, that
  the incident is still in the status and with the assignee the plan saw.
- A selection that lets every incident through (see tasks/decide/bulk_selection.py) is refused
  unless the request sets `confirm_all`.
- Offboarding ("assign" with `to_manager`): the incident goes to the current assignee's manager
  when the directory names one who is an active member, else to `assignee_email` (the named
  successor), else it is skipped as `no_successor`. A manager lookup that could not tell (the
  person's entry or the manager's failed, was ambiguous or truncated) skips the incident as
  `manager_lookup_error`: never the named successor instead.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clients.models import CLOSED_STATUSES, OPEN_STATUSES
from tasks.decide.bulk_selection import (
    DATE_FILTERS,
    SKIP_NO_OCCURRENCES,
    BulkSelection,
    date_window,
    select,
)
from tasks.decide.evidence import MANAGER_LOOKUP_ERROR, Evidence
from tasks.decide.identity import is_bot_or_noreply, normalise_email
from tasks.decide.notes import clip, note_budget
from tasks.decide.paths import printable
from tasks.decide.plan import RESTORE_HUMAN_CHANGES_HELP, Action, Decision, Plan, Precondition, Skip

# Importers name these here, as before the selection got its own module.
__all__ = [
    "NOTE_BUDGET", "PLAYBOOK", "SKIP_ALREADY_DONE", "SKIP_MANAGER_LOOKUP_ERROR",
    "SKIP_NO_OCCURRENCES", "SKIP_NO_SUCCESSOR", "SKIP_NOT_APPLICABLE", "SKIP_SAME_ASSIGNEE",
    "UNFILTERED_REFUSAL", "BulkAction", "BulkRequest", "BulkSelection", "RefusedRequest",
    "check_dates_exclude", "check_request", "decide_bulk_remediation", "render_note", "select",
]

PLAYBOOK = "bulk-remediation"

# Skip reasons, stable: the plan table and the ledger use them (and SKIP_NO_OCCURRENCES).
SKIP_ALREADY_DONE = "already_done"
SKIP_NOT_APPLICABLE = "status_not_applicable"
SKIP_NO_SUCCESSOR = "no_successor"
SKIP_SAME_ASSIGNEE = "successor_is_assignee"
SKIP_MANAGER_LOOKUP_ERROR = MANAGER_LOOKUP_ERROR  # to_manager: the directory could not tell

NOTE_BUDGET = note_budget(PLAYBOOK)  # the API's 10,000 characters, less the marker
_REASON_MAX_CHARS = 4_000

IgnoreReasonName = Literal["test_credential", "false_positive", "low_risk", "invalid"]


ActionName = Literal["assign", "unassign", "resolve", "ignore", "reopen", "share", "note"]


class BulkAction(BaseModel):
    """What to do to every selected incident, and the action's arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ActionName = Field(
        description="assign, unassign, resolve, ignore, reopen, share, or note (only the note)."
    )
    assignee_email: str | None = Field(
        None,
        description="assign: the member who receives the incidents (with to_manager: the named "
        "successor used when the directory names no manager).",
    )
    to_manager: bool = Field(
        False,
        description="assign: give each incident to its current assignee's manager per the "
        "directory (LDAP_URL or DIRECTORY_JSON); falls back to assignee_email.",
    )
    send_email: bool = Field(False, description="assign: let GitGuardian e-mail the new assignee.")
    secret_revoked: bool = Field(
        False, description="resolve: the secret was revoked (true) or not (false)."
    )
    ignore_reason: IgnoreReasonName | None = Field(
        None, description="ignore: test_credential, false_positive, low_risk or invalid."
    )
    auto_healing: bool = Field(False, description="share: let the developer resolve it.")
    feedback_collection: bool = Field(True, description="share: ask the developer for feedback.")
    lifespan_hours: int = Field(
        0, ge=0, le=8760, description="share: hours the link lives; 0 = the workspace default."
    )

    @field_validator("assignee_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        email = normalise_email(value)
        if not email:
            return None
        if "@" not in email:
            raise ValueError(f"{email!r} is not an e-mail address")
        return email

    @model_validator(mode="after")
    def _arguments(self) -> BulkAction:
        if self.kind == "assign" and not (self.assignee_email or self.to_manager):
            raise ValueError("assign needs assignee_email, to_manager, or both")
        if self.kind != "assign" and (self.assignee_email or self.to_manager):
            raise ValueError("assignee_email and to_manager only go with assign")
        if self.kind == "ignore" and not self.ignore_reason:
            raise ValueError("ignore needs an ignore_reason")
        if self.kind != "ignore" and self.ignore_reason:
            raise ValueError("ignore_reason only goes with ignore")
        return self

    @property
    def action(self) -> Action:
        return Action(self.kind)

    def arguments(self) -> dict[str, Any]:
        """The write path's arguments for this action (tasks/act.py `_perform`)."""
        match self.kind:
            case "assign":
                return {"email": self.assignee_email, "send_email": self.send_email}
            case "resolve":
                return {"secret_revoked": self.secret_revoked}
            case "ignore":
                return {"ignore_reason": self.ignore_reason}
            case "share":
                return {
                    "auto_healing": self.auto_healing,
                    "feedback_collection": self.feedback_collection,
                    "lifespan_hours": self.lifespan_hours,
                }
        return {}

    @property
    def scopes(self) -> tuple[str, ...]:
        if self.kind == "share":
            return ("incidents:read", "incidents:share")
        if self.kind == "assign":
            return ("incidents:read", "incidents:write", "members:read")
        return ("incidents:read", "incidents:write")


class BulkRequest(BaseModel):
    """A one-off bulk action: the selection, the action, the reason written on every incident."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    restore_human_changes: bool = Field(False, description=RESTORE_HUMAN_CHANGES_HELP)
    selection: BulkSelection = Field(
        default_factory=BulkSelection,
        description="Which incidents: API filters and client-side conditions, e.g. "
        '{"status": ["TRIGGERED", "ASSIGNED"], "detector_group_name": "generic_password"}. '
        "A selection without a filter matches every incident and needs confirm_all.",
    )
    action: BulkAction = Field(
        description="What to do to each selected incident, e.g. "
        '{"kind": "ignore", "ignore_reason": "false_positive"}, {"kind": "resolve", '
        '"secret_revoked": true} or {"kind": "assign", "to_manager": true, '
        '"assignee_email": "successor@corp.example"}.'
    )
    reason: str = Field(
        min_length=1,
        max_length=_REASON_MAX_CHARS,
        description="Why: written as the note on every incident acted on. Mandatory.",
    )
    confirm_all: bool = Field(
        False, description="Allow a selection that matches every incident of the workspace."
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the reason must not be blank: it becomes the note on every incident")
        return value.strip()


class RefusedRequest(ValueError):
    """A bulk request that must not run as given; the message says what to change."""


UNFILTERED_REFUSAL = (
    "the selection has no filter that excludes anything and would match every incident{why}: "
    "add a filter, or set confirm_all to act on the whole workspace"
)


def check_request(request: BulkRequest, *, now: datetime | None = None) -> None:
    """Everything that can be refused before any request: RefusedRequest or ValueError."""
    if not request.reason.strip():  # also covers model_construct, which skips validation
        raise RefusedRequest("the reason must not be blank: it becomes the note on every incident")
    request.selection.validate_api_filters()
    if request.selection.is_unfiltered(now) and not request.confirm_all:
        selection = request.selection
        why = []
        if selection.path_globs:
            why.append(f"(path_globs {selection.path_globs} match every production-looking path)")
        if any(name in DATE_FILTERS for name in selection.api_filters) or selection.max_age_days:
            why.append("(its date bounds exclude no incident that could exist)")
        raise RefusedRequest(UNFILTERED_REFUSAL.format(why=" " + " ".join(why) if why else ""))


def check_dates_exclude(
    request: BulkRequest, oldest: datetime | None, newest: datetime | None, *, now: datetime
) -> None:
    """RefusedRequest when the selection's only conditions are date bounds and they exclude no
    incident of the workspace: `oldest` and `newest` are the `date`s of the first and last
    incident the selection matches without its date bounds (None: the workspace has none)."""
    selection = request.selection
    if request.confirm_all or not selection.narrowed_by_dates_only(now):
        return
    lower, upper = date_window(selection, now)
    excludes = (
        oldest is not None
        and newest is not None
        and ((lower is not None and oldest < lower) or (upper is not None and newest > upper))
    )
    if not excludes:
        span = (
            f"its incidents date from {oldest:%Y-%m-%d} to {newest:%Y-%m-%d}"
            if oldest is not None and newest is not None
            else "it has no incident"
        )
        raise RefusedRequest(
            UNFILTERED_REFUSAL.format(
                why=f" (its date bounds exclude no incident of this workspace: {span})"
            )
        )


# --------------------------------------------------------------------------- decide


def _not_applicable(incident: Any, action: BulkAction) -> Skip | None:
    status = incident.status
    kind = action.kind
    if (kind, status) in (("resolve", "RESOLVED"), ("ignore", "IGNORED")):
        return Skip(incident.id, SKIP_ALREADY_DONE, f"already {status}")
    if kind == "reopen" and status in OPEN_STATUSES:
        return Skip(incident.id, SKIP_ALREADY_DONE, f"already open ({status})")
    share_url = getattr(incident, "share_url", None)
    if kind == "share" and share_url is not None and share_url.get_secret_value():
        return Skip(incident.id, SKIP_ALREADY_DONE, "already shared")
    if kind == "unassign" and status == "TRIGGERED" and not incident.assignee_email:
        return Skip(incident.id, SKIP_ALREADY_DONE, "already unassigned")
    if kind in ("assign", "unassign", "resolve", "ignore") and status not in OPEN_STATUSES:
        return Skip(
            incident.id, SKIP_NOT_APPLICABLE, f"{kind} needs an open incident, it is {status}"
        )
    if kind == "reopen" and status not in CLOSED_STATUSES:
        return Skip(
            incident.id, SKIP_NOT_APPLICABLE, f"reopen needs a closed incident, it is {status}"
        )
    return None


def _successor(
    incident: Any,
    action: BulkAction,
    managers: Mapping[str, str | Evidence[str]],
    active_members: Mapping[str, int] | None,
) -> tuple[str | None, str | Evidence]:
    """(e-mail, provenance) of who receives the incident; (None, why) when nobody can, or
    (None, the unknown) when the manager lookup could not tell."""

    def usable(email: str | None) -> bool:
        return (
            bool(email)
            and not is_bot_or_noreply(email)
            and (active_members is None or email in active_members)
        )

    current = normalise_email(incident.assignee_email)
    if action.to_manager:
        found = _manager_evidence(managers.get(current))
        if found.is_unknown:  # never the named successor instead: the manager may be fine
            return None, found
        manager = normalise_email(found.value)
        if found.is_yes and usable(manager) and manager != current:
            return manager, "manager"
    if action.assignee_email and usable(action.assignee_email):
        return action.assignee_email, "successor"
    if action.assignee_email:
        return None, f"{action.assignee_email} is not an active workspace member"
    return None, f"the directory names no active manager for {current or 'the assignee'}"


def _manager_evidence(value: str | Evidence[str] | None) -> Evidence[str]:
    """A manager as the flow found it: an e-mail (yes), nothing (no manager named), or the
    tri-state evidence itself (an unknown when the directory could not tell)."""
    if isinstance(value, Evidence):
        return value
    return Evidence.yes(value) if value else Evidence.no("no manager named")


def decide_bulk_remediation(
    incidents: Sequence[Any],
    occurrences_by_incident: Mapping[int, Sequence[Any]],
    request: BulkRequest,
    *,
    now: datetime | None = None,
    managers: Mapping[str, str | Evidence[str]] | None = None,
    members: Sequence[Any] | None = None,
) -> Plan:
    """The plan: one decision per selected incident the action still applies to.

    `managers`: normalised assignee e-mail -> manager e-mail, or tri-state Evidence of it
    (offboarding with to_manager): an unknown skips the incident (`manager_lookup_error`),
    never hands it to the named successor.
    `members`: the workspace members; when given, an assignee must be an active one, and is
    assigned by member id (a member's e-mail may differ from the directory's in case or spaces).
    """
    now = now or datetime.now(UTC)
    managers = {normalise_email(k): v for k, v in (managers or {}).items()}
    active = (
        {normalise_email(m.email): m.id for m in members if m.active is not False}
        if members is not None
        else None
    )
    action = request.action
    selected, skips = select(incidents, occurrences_by_incident, request.selection, now=now)
    decisions: list[Decision] = []
    for incident in selected:
        skip = _not_applicable(incident, action)
        if skip is not None:
            skips.append(skip)
            continue
        arguments = action.arguments()
        reason = "bulk_" + action.kind
        shown = ", ".join(f"{k}={v}" for k, v in sorted(arguments.items()))
        evidence = f"{action.kind}{f' ({shown})' if shown else ''} on {incident.status} incident"
        assignee = None
        if action.kind == "assign":
            email, provenance = _successor(incident, action, managers, active)
            if isinstance(provenance, Evidence):
                skips.append(provenance.skip(incident.id))
                continue
            if email is None:
                skips.append(Skip(incident.id, SKIP_NO_SUCCESSOR, provenance))
                continue
            if email == normalise_email(incident.assignee_email) and incident.status == "ASSIGNED":
                skips.append(Skip(incident.id, SKIP_SAME_ASSIGNEE, f"already assigned to {email}"))
                continue
            arguments, assignee = {**arguments, "email": email}, email
            if active is not None:
                arguments = {"member_id": active[email], "send_email": action.send_email}
            reason = f"bulk_assign_{provenance}"
            evidence = (
                f"assigned to {email} ({provenance}), was "
                f"{printable(incident.assignee_email) if incident.assignee_email else 'unassigned'}"
            )
        elif action.kind == "note":
            # The reason is part of the id: the same note is never written twice, a new one is.
            arguments = {"note_digest": hashlib.sha256(request.reason.encode()).hexdigest()[:12]}
        decisions.append(
            Decision(
                playbook=PLAYBOOK,
                incident_id=incident.id,
                action=action.action,
                arguments=arguments,
                reason=reason,
                evidence=evidence,
                shown_assignee=assignee,
                # Written only if nobody changed the incident since the plan was made.
                precondition=Precondition(
                    statuses=(incident.status,),
                    assignee_email=incident.assignee_email,
                    check_assignee=True,
                ),
            )
        )
    return Plan(PLAYBOOK, tuple(decisions), tuple(skips))


def render_note(decision: Decision, request: BulkRequest) -> str:
    """The note written on each incident: the operator's reason, then what was done."""
    done = f"Bulk remediation: {decision.evidence}."
    if decision.action is Action.NOTE:
        done = "Bulk remediation note."
    done = clip(done, 500)
    return f"{clip(request.reason, NOTE_BUDGET - len(done) - 2)}\n\n{done}"
