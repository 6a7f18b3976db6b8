"""Departed-developer reassignment: who should take over the open incidents of people who left.

Pure functional core: incidents, directory answers, members and file owners in, a `Plan` out.
No I/O and no Prefect here; the flow (flows/departed_developers.py) gathers the inputs and the
one write path (tasks/act.py) applies the plan.

Safety rules (DESIGN.md): only a positive leaver marker (a DEPARTED lookup) makes a departure;
UNKNOWN, ERROR, a missing answer, a bot or a no-reply address never does. A successor is always
an active workspace member who is not a known leaver, not a bot and not the person who left.

Choices documented here because the brief left them open:
- An assigned incident whose assignee is ACTIVE is not in the plan and not skipped: it is the
  normal case and would bury the skips worth reading.
- A missing directory answer for a human assignee is skipped as "directory_error": the
  directory was not asked or did not answer, which is a lookup failure, not an unknown person.
- Unassigned (TRIGGERED) incidents are only reported as skips once at least one human author
  departed; an incident whose authors are all active or unknown is simply not a candidate.
- Evidence is tri-state (tasks/decide/evidence.py): a candidate of the successor chain
  (tasks/decide/departed_successors.py) whose lookup failed (a manager's entry, the CODEOWNERS
  file, a committer's entry, ...) stops the chain and the incident is skipped with
  `manager_lookup_error`, `owner_lookup_error`, `committer_lookup_error` or
  `fallback_lookup_error`: never handed to the next candidate.
- The Decision's `reason` is the successor's provenance ("manager", "codeowner",
  "recent_committer", "fallback"); the evidence says who left, with which markers, and why the
  successor was chosen.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clients.directory import Lookup, Status
from clients.models import OPEN_STATUSES
from tasks.decide.coverage import OCCURRENCES_UNSEEN, occurrence_gap
from tasks.decide.departed_successors import (
    REASON_CODEOWNER,
    REASON_FALLBACK,
    REASON_MANAGER,
    REASON_RECENT_COMMITTER,
    Departure,
    MemberView,
    People,
    active_members,
    candidates,
    tried,
)
from tasks.decide.evidence import (
    COMMITTER_LOOKUP_ERROR,
    DIRECTORY_ERROR,
    FALLBACK_LOOKUP_ERROR,
    MANAGER_LOOKUP_ERROR,
    OWNER_LOOKUP_ERROR,
    Evidence,
    first_yes,
)
from tasks.decide.identity import (
    by_normalised_address,
    departed_addresses,
    is_bot_or_noreply,
    normalise_email,
)
from tasks.decide.notes import LONGEST_ADDRESS, check_template, clip, note_budget
from tasks.decide.plan import RESTORE_HUMAN_CHANGES_HELP, Action, Decision, Plan, Precondition, Skip

# Importers name these here, as before the successor chain got its own module.
__all__ = [
    "DEFAULT_NOTE_TEMPLATE", "NOTE_BUDGET", "PLAYBOOK", "REASON_CODEOWNER", "REASON_FALLBACK",
    "REASON_MANAGER", "REASON_RECENT_COMMITTER", "DepartedDevelopersPolicy", "MemberView",
    "decide_departed_developers", "render_note",
]

PLAYBOOK = "departed-developer-reassignment"

# (and REASON_*: the successor's provenance, tasks/decide/departed_successors.py)
SKIP_UNKNOWN = "assignee_unknown"
SKIP_DIRECTORY_ERROR = DIRECTORY_ERROR
# A candidate that could not be checked stops the chain (tasks/decide/evidence.py).
SKIP_MANAGER_LOOKUP_ERROR = MANAGER_LOOKUP_ERROR
SKIP_OWNER_LOOKUP_ERROR = OWNER_LOOKUP_ERROR
SKIP_COMMITTER_LOOKUP_ERROR = COMMITTER_LOOKUP_ERROR
SKIP_FALLBACK_LOOKUP_ERROR = FALLBACK_LOOKUP_ERROR
SKIP_BOT = "assignee_bot"
SKIP_NO_SUCCESSOR = "no_successor"
SKIP_AUTHOR_UNKNOWN = "author_unknown"
SKIP_OCCURRENCES_INCOMPLETE = OCCURRENCES_UNSEEN  # and OCCURRENCES_COUNT_UNKNOWN: coverage.py

NOTE_PLACEHOLDERS = frozenset({"old", "new", "reason"})
DEFAULT_NOTE_TEMPLATE = (
    "Reassigned from {old} to {new} by the departed-developer playbook. {reason}"
)
# The note's {reason} (the decision's evidence) is cut to this; the longest evidence written
# for an assignee with 254-character addresses is about 900 characters.
REASON_MAX_CHARS = 1_000
NOTE_BUDGET = note_budget(PLAYBOOK)
# What a template is checked with: the longest address, the longest reason.
_WORST_NOTE_VALUES = {
    "old": LONGEST_ADDRESS, "new": LONGEST_ADDRESS, "reason": "r" * REASON_MAX_CHARS,
}


class DepartedDevelopersPolicy(BaseModel):
    """Which incidents the departed-developer playbook takes over, and who receives them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    restore_human_changes: bool = Field(False, description=RESTORE_HUMAN_CHANGES_HELP)
    include_unassigned: bool = Field(
        False,
        description="Also take unassigned (TRIGGERED) incidents whose commit authors all left "
        "the company (bots and no-reply authors are not counted).",
    )
    manager_depth: int = Field(
        2,
        ge=1,
        le=5,
        description="How far up the management chain to look for a successor: 1 = the manager "
        "only, 2 = then the manager's manager, and so on.",
    )
    use_codeowners: bool = Field(
        True,
        description="When no manager can take it, give it to the first CODEOWNERS owner of the "
        "leaking file whom the directory knows as active and who is an active workspace member.",
    )
    use_recent_committers: bool = Field(
        True,
        description="Then to the most recent committer of the leaking file (after .mailmap) whom "
        "the directory knows as active and who is an active workspace member.",
    )
    fallback_email: str | None = Field(
        None,
        description="Last resort: this workspace member's e-mail (e.g. the security team lead). "
        "Empty: incidents with no successor are left as they are and reported.",
    )
    send_email: bool = Field(
        True, description="Let GitGuardian e-mail the new assignee about the incident."
    )
    note_template: str = Field(
        DEFAULT_NOTE_TEMPLATE,
        min_length=1,
        max_length=NOTE_BUDGET,
        description="The note written on each reassigned incident. Placeholders: {old} (previous "
        "assignee), {new} (new assignee), {reason} (why this successor). Write {{ }} for braces. "
        f"With 254-character addresses and a {REASON_MAX_CHARS}-character reason it must fit in "
        f"{NOTE_BUDGET} characters (the API takes 10,000 per note, the marker included).",
    )

    @field_validator("fallback_email")
    @classmethod
    def _fallback_is_an_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if "@" not in value or any(c.isspace() for c in value):
            raise ValueError("fallback_email must be a single e-mail address")
        return value

    @field_validator("note_template")
    @classmethod
    def _template_fits_a_note(cls, value: str) -> str:
        return check_template(
            "note_template", value, _WORST_NOTE_VALUES, NOTE_BUDGET, allowed=NOTE_PLACEHOLDERS
        )


# --- what the decide reads of the API models (clients/models.py); test stand-ins fit too ---


class IncidentView(Protocol):
    id: int
    status: str
    assignee_email: str | None
    assignee_id: int | None
    occurrences_count: int | None


class OccurrenceView(Protocol):
    id: int
    date: datetime | None
    author_info: str | None
    author_name: str | None


# --- who left ---------------------------------------------------------------------------------


def _markers(lookup: Lookup) -> str:
    markers = lookup.person.leaver_markers if lookup.person else ()
    return ", ".join(markers) if markers else "leaver marker"


def _assigned_departure(incident: IncidentView, people: People) -> Departure | Skip | None:
    raw = incident.assignee_email
    address = normalise_email(raw)
    if not address:
        return Skip(
            incident.id, SKIP_UNKNOWN, "The incident is assigned but lists no assignee e-mail."
        )
    if is_bot_or_noreply(address):
        return Skip(incident.id, SKIP_BOT, f"The assignee {address} is a bot or no-reply address.")
    lookup = people.directory.get(address)
    if lookup is None:
        return Skip(
            incident.id, SKIP_DIRECTORY_ERROR, f"The directory gave no answer for {address}."
        )
    if lookup.status is Status.ERROR:
        return Skip(
            incident.id,
            SKIP_DIRECTORY_ERROR,
            f"The directory lookup of {address} failed; that is never read as a departure.",
        )
    if lookup.status is Status.UNKNOWN:
        return Skip(
            incident.id,
            SKIP_UNKNOWN,
            f"The directory does not know {address}; that is never read as a departure.",
        )
    if lookup.status is not Status.DEPARTED:
        return None  # active: nothing to do, and not worth a line in the skip list
    return Departure(
        old_assignee=raw,
        leavers=(address,),
        evidence=f"The assignee {address} left the company ({_markers(lookup)}).",
    )


def _by_recency(occurrences: Iterable[OccurrenceView]) -> list[OccurrenceView]:
    # Tuples compare element by element and stop at the first difference: None dates are safe.
    return sorted(occurrences, key=lambda o: (o.date is not None, o.date, o.id), reverse=True)


def _unassigned_departure(
    incident: IncidentView, occurrences: Sequence[OccurrenceView], people: People
) -> Departure | Skip | None:
    authors: list[str] = []
    for occurrence in _by_recency(occurrences):
        address = normalise_email(occurrence.author_info)
        if is_bot_or_noreply(address, occurrence.author_name) or address in authors:
            continue
        authors.append(address)
    if not authors:
        return None  # no human author: nobody left, nothing to claim
    lookups = {a: people.directory.get(a) for a in authors}
    departed = [
        a for a in authors if lookups[a] is not None and lookups[a].status is Status.DEPARTED
    ]
    if not departed:
        return None
    if any(lookup is not None and lookup.status is Status.ACTIVE for lookup in lookups.values()):
        return None  # someone who wrote it is still here: not an orphan
    failed = [a for a in authors if lookups[a] is None or lookups[a].status is Status.ERROR]
    if failed:
        return Skip(
            incident.id,
            SKIP_DIRECTORY_ERROR,
            f"Some authors left, but the directory gave no answer for {', '.join(failed)}.",
        )
    unknown = [a for a in authors if lookups[a].status is Status.UNKNOWN]
    if unknown:
        return Skip(
            incident.id,
            SKIP_AUTHOR_UNKNOWN,
            f"Some authors left, but the directory does not know {', '.join(unknown)}.",
        )
    # "All authors left" is a claim about every occurrence: unseen ones could disprove it, and
    # a null occurrences_count cannot say that none is unseen.
    gap = occurrence_gap(getattr(incident, "occurrences_count", None), occurrences)
    if gap is not None:
        return Skip(incident.id, gap.reason, f"{gap.evidence}; cannot tell that every author left.")
    described = ", ".join(f"{a} ({_markers(lookups[a])})" for a in departed)
    return Departure(
        old_assignee=None,
        leavers=tuple(departed),
        evidence="The incident is unassigned and every commit author left the company: "
        f"{described}.",
    )


# --- the decision -----------------------------------------------------------------------------


def _unique_by_id(incidents: Iterable[IncidentView]) -> list[IncidentView]:
    """One snapshot per incident id, the same one whatever the input order."""
    ordered = sorted(
        incidents, key=lambda i: (i.id, str(i.status), normalise_email(i.assignee_email))
    )
    seen: set[int] = set()
    unique = []
    for incident in ordered:
        if incident.id not in seen:
            seen.add(incident.id)
            unique.append(incident)
    return unique


def decide_departed_developers(
    incidents: Iterable[IncidentView],
    *,
    directory: Mapping[str, Lookup],
    managers: Mapping[str, Sequence[Lookup]],
    members: Sequence[MemberView],
    occurrences_by_incident: Mapping[int, Sequence[OccurrenceView]],
    codeowners: Mapping[int, Sequence[str] | Evidence[Sequence[str]]],
    recent_committers: Mapping[int, Sequence[str] | Evidence[Sequence[str]]],
    policy: DepartedDevelopersPolicy,
) -> Plan:
    """The reassignments to make, and the incidents left alone with the reason.

    `directory`: normalised e-mail -> Lookup. `managers`: normalised leaver e-mail -> manager
    chain, nearest first (a failed step is an ERROR lookup). `codeowners` /
    `recent_committers`: incident id -> e-mails for the leaking file, in priority order, or an
    unknown Evidence when the repository could not be read. Same inputs in any order give the
    same plan.
    """
    normalised_directory = by_normalised_address(directory)
    people = People(
        directory=normalised_directory,
        managers=by_normalised_address(managers),
        active_members=active_members(members),
        departed_addresses=departed_addresses(normalised_directory),
    )
    decisions: list[Decision] = []
    skips: list[Skip] = []
    for incident in _unique_by_id(incidents):
        if incident.status not in OPEN_STATUSES:
            continue
        assigned = incident.status == "ASSIGNED" or bool(normalise_email(incident.assignee_email))
        if assigned:
            found = _assigned_departure(incident, people)
        elif policy.include_unassigned and not getattr(incident, "assignee_id", None):
            found = _unassigned_departure(
                incident, occurrences_by_incident.get(incident.id, ()), people
            )
        else:
            found = None
        if found is None:
            continue
        if isinstance(found, Skip):
            skips.append(found)
            continue
        chosen = first_yes(
            candidates(incident.id, found, people, codeowners, recent_committers, policy)
        )
        if chosen.is_unknown:
            # Never the next candidate: the one that could not be checked may be the successor.
            skips.append(chosen.skip(incident.id, found.evidence))
            continue
        successor = chosen.value
        if successor is None:
            skips.append(
                Skip(
                    incident.id,
                    SKIP_NO_SUCCESSOR,
                    tried(incident.id, found, people, codeowners, recent_committers, policy),
                )
            )
            continue
        decisions.append(
            Decision(
                playbook=PLAYBOOK,
                incident_id=incident.id,
                action=Action.ASSIGN,
                arguments={"email": successor.member.email, "send_email": policy.send_email},
                reason=successor.reason,
                evidence=f"{found.evidence} {successor.why}",
                # The write path re-reads the incident: a human reassignment since the plan wins.
                precondition=Precondition(
                    statuses=OPEN_STATUSES,
                    assignee_email=found.old_assignee,
                    check_assignee=True,
                ),
            )
        )
    return Plan(PLAYBOOK, tuple(decisions), tuple(skips))


def render_note(decision: Decision, policy: DepartedDevelopersPolicy) -> str:
    """The note explaining a reassignment; the write path appends its own marker."""
    old = decision.precondition.assignee_email or "nobody (every commit author left)"
    new = str(decision.arguments.get("email", ""))
    reason = clip(decision.evidence, REASON_MAX_CHARS)
    note = policy.note_template.format(old=old, new=new, reason=reason).strip()
    return clip(note, NOTE_BUDGET)  # a policy built without validation still gets a note
