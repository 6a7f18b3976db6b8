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
- Evidence is tri-state (tasks/decide/evidence.py): a candidate of the successor chain whose
  lookup failed (a manager's entry, the CODEOWNERS file, a committer's entry, ...) stops the
  chain and the incident is skipped with `manager_lookup_error`, `owner_lookup_error`,
  `committer_lookup_error` or `fallback_lookup_error`: never handed to the next candidate.
- The Decision's `reason` is the successor's provenance ("manager", "codeowner",
  "recent_committer", "fallback"); the evidence says who left, with which markers, and why the
  successor was chosen.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clients.directory import Lookup, Person, Status
from clients.models import OPEN_STATUSES
from tasks.decide.coverage import OCCURRENCES_UNSEEN, occurrence_gap
from tasks.decide.evidence import (
    COMMITTER_LOOKUP_ERROR,
    DIRECTORY_ERROR,
    FALLBACK_LOOKUP_ERROR,
    MANAGER_LOOKUP_ERROR,
    OWNER_LOOKUP_ERROR,
    Evidence,
    first_yes,
    from_directory,
    listed,
)
from tasks.decide.identity import (
    by_normalised_address,
    departed_addresses,
    is_bot_or_noreply,
    normalise_email,
)
from tasks.decide.notes import LONGEST_ADDRESS, check_template, clip, note_budget
from tasks.decide.plan import RESTORE_HUMAN_CHANGES_HELP, Action, Decision, Plan, Precondition, Skip

PLAYBOOK = "departed-developer-reassignment"

# Reason codes, stable: the plan table, the ledger and the sandbox's ground truth use them.
REASON_MANAGER = "manager"
REASON_CODEOWNER = "codeowner"
REASON_RECENT_COMMITTER = "recent_committer"
REASON_FALLBACK = "fallback"
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


class MemberView(Protocol):
    id: int
    email: str
    active: bool | None


# --- inputs, normalised once ------------------------------------------------------------------


@dataclass(frozen=True)
class _People:
    """What the run knows about people, keyed by normalised address."""

    directory: Mapping[str, Lookup]
    managers: Mapping[str, Sequence[Lookup]]
    active_members: Mapping[str, MemberView]  # normalised e-mail -> Member
    departed_addresses: frozenset[str]  # every address (primary, alias) of a known leaver

    def is_departed(self, address: str) -> bool:
        lookup = self.directory.get(address)
        return address in self.departed_addresses or (
            lookup is not None and lookup.status is Status.DEPARTED
        )


def _active_members(members: Iterable[MemberView]) -> dict[str, MemberView]:
    """Active members by normalised e-mail; on duplicates the lowest id wins (determinism)."""
    index: dict[str, MemberView] = {}
    for member in sorted(members, key=lambda m: m.id):
        address = normalise_email(member.email)
        if member.active and address and not is_bot_or_noreply(address):
            index.setdefault(address, member)
    return index


# --- who left ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Departure:
    """An incident to take over: who held it, who left, and what the directory said."""

    old_assignee: str | None  # as the API listed it; None for an unassigned incident
    leavers: tuple[str, ...]  # normalised addresses, most relevant first
    evidence: str


def _markers(lookup: Lookup) -> str:
    markers = lookup.person.leaver_markers if lookup.person else ()
    return ", ".join(markers) if markers else "leaver marker"


def _assigned_departure(incident: IncidentView, people: _People) -> _Departure | Skip | None:
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
    return _Departure(
        old_assignee=raw,
        leavers=(address,),
        evidence=f"The assignee {address} left the company ({_markers(lookup)}).",
    )


def _by_recency(occurrences: Iterable[OccurrenceView]) -> list[OccurrenceView]:
    # Tuples compare element by element and stop at the first difference: None dates are safe.
    return sorted(occurrences, key=lambda o: (o.date is not None, o.date, o.id), reverse=True)


def _unassigned_departure(
    incident: IncidentView, occurrences: Sequence[OccurrenceView], people: _People
) -> _Departure | Skip | None:
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
    return _Departure(
        old_assignee=None,
        leavers=tuple(departed),
        evidence="The incident is unassigned and every commit author left the company: "
        f"{described}.",
    )


# --- who takes over ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Successor:
    member: MemberView
    reason: str
    why: str


def _excluded(address: str, departure: _Departure, people: _People) -> str | None:
    """Why this address may never receive the incident, known without any lookup; else None."""
    if not address or is_bot_or_noreply(address):
        return f"{address or 'an empty address'} is not a person"
    if address in departure.leavers or (
        departure.old_assignee is not None and address == normalise_email(departure.old_assignee)
    ):
        return f"{address} is the person who left"
    if people.is_departed(address):
        return f"{address} left the company"
    return None


def _eligible(address: str, departure: _Departure, people: _People) -> MemberView | None:
    """The active member behind this address, if they may receive the incident."""
    if _excluded(address, departure, people) is not None:
        return None
    return people.active_members.get(address)


def _account_of(person: Person, departure: _Departure, people: _People,
                *also: str) -> MemberView | None:
    """The active member account of a person the directory answered as active, under their
    primary address, an alias or `also`."""
    for address in (person.email, *person.aliases, *also):
        member = _eligible(normalise_email(address), departure, people)
        if member is not None:
            return member
    return None


def _managers(departure: _Departure, people: _People, depth: int) -> Iterator[Evidence[_Successor]]:
    """Each leaver's managers, nearest first. A chain the enrich layer did not give is taken as
    no manager (it gives one per leaver); a failed step in it is an unknown."""
    for leaver in departure.leavers:
        for level, lookup in enumerate(people.managers.get(leaver, ())[:depth], start=1):
            title = "manager" if level == 1 else f"manager at level {level}"
            subject = f"the {title} of {leaver}"
            yield _vouched(lookup, departure, people, reason=REASON_MANAGER,
                           lookup_error=MANAGER_LOOKUP_ERROR, subject=subject,
                           not_member=f"{subject} is not an active workspace member who may "
                                      "take it.")


def _listed(
    addresses: Sequence[str] | Evidence[Sequence[str]] | None,
    departure: _Departure, people: _People, *, reason: str, role: str, lookup_error: str,
) -> Iterator[Evidence[_Successor]]:
    """Owners or committers found in a repository, in order. They qualify only when the
    directory knows them as active (by that address or an alias), so that a leaver whose
    workspace account is still active or someone the directory does not know never inherits
    an incident; a listing or a directory lookup that failed is an unknown."""
    listing = listed(addresses, what=role)
    if not listing.is_yes:
        yield listing.retyped()
        return
    for address in listing.value or ():
        address = normalise_email(address)
        excluded = _excluded(address, departure, people)
        if excluded is not None:
            yield Evidence.no(excluded)
            continue
        subject = f"{role} {address}"
        yield _vouched(people.directory.get(address), departure, people, address, reason=reason,
                       lookup_error=lookup_error, subject=subject, role=role,
                       not_member=f"{subject} is not an active workspace member.")


def _vouched(lookup: Lookup | None, departure: _Departure, people: _People, *also: str,
             reason: str, lookup_error: str, subject: str, not_member: str,
             role: str | None = None) -> Evidence[_Successor]:
    """A candidate the directory answered about: a successor when it knows them as active and
    one of their addresses (or `also`) is an active member who may take the incident; no when
    it does not; unknown (`lookup_error`) when the lookup failed."""
    found = from_directory(lookup, reason=lookup_error, subject=subject)
    if not found.is_yes:
        return found.retyped()
    member = _account_of(found.value, departure, people, *also)
    if member is None:
        return Evidence.no(not_member)
    return Evidence.yes(_Successor(
        member, reason,
        f"{normalise_email(member.email)} is {role or subject} and an active workspace member.",
    ))


def _fallback(address: str, departure: _Departure, people: _People) -> Evidence[_Successor]:
    """The policy's fallback: named by the operator, so the member list vouches for them; a
    directory answer about them that failed is still an unknown (they may have left)."""
    address = normalise_email(address)
    lookup = people.directory.get(address)
    if lookup is not None and lookup.status is Status.ERROR and not people.is_departed(address):
        return from_directory(lookup, reason=FALLBACK_LOOKUP_ERROR,
                              subject=f"the fallback {address}").retyped()
    member = _eligible(address, departure, people)
    if member is None:
        return Evidence.no(f"the fallback {address} may not take it")
    return Evidence.yes(_Successor(
        member, REASON_FALLBACK,
        f"{normalise_email(member.email)} is the policy's fallback assignee and an active "
        "workspace member.",
    ))


def _candidates(
    incident_id: int,
    departure: _Departure,
    people: _People,
    codeowners: Mapping[int, Sequence[str] | Evidence[Sequence[str]]],
    recent_committers: Mapping[int, Sequence[str] | Evidence[Sequence[str]]],
    policy: DepartedDevelopersPolicy,
) -> Iterator[Evidence[_Successor]]:
    """The successor chain, in order, lazily: a walk that stops never looks further."""
    yield from _managers(departure, people, policy.manager_depth)
    if policy.use_codeowners:
        yield from _listed(
            codeowners.get(incident_id), departure, people, reason=REASON_CODEOWNER,
            role="a CODEOWNERS owner of the leaking file", lookup_error=OWNER_LOOKUP_ERROR,
        )
    if policy.use_recent_committers:
        yield from _listed(
            recent_committers.get(incident_id), departure, people,
            reason=REASON_RECENT_COMMITTER,
            role="a recent committer of the leaking file", lookup_error=COMMITTER_LOOKUP_ERROR,
        )
    if policy.fallback_email:
        yield _fallback(policy.fallback_email, departure, people)


def _tried(
    incident_id: int,
    departure: _Departure,
    people: _People,
    codeowners: Mapping[int, Sequence[str] | Evidence[Sequence[str]]],
    recent_committers: Mapping[int, Sequence[str] | Evidence[Sequence[str]]],
    policy: DepartedDevelopersPolicy,
) -> str:
    managers = sum(
        len(people.managers.get(leaver, ())[: policy.manager_depth]) for leaver in departure.leavers
    )
    parts = [f"{managers} manager(s) up to level {policy.manager_depth}"]
    if policy.use_codeowners:
        owners = listed(codeowners.get(incident_id), what="owner").value or ()
        parts.append(f"{len(owners)} CODEOWNERS owner(s)")
    if policy.use_recent_committers:
        committers = listed(recent_committers.get(incident_id), what="committer").value or ()
        parts.append(f"{len(committers)} recent committer(s)")
    parts.append(f"fallback {policy.fallback_email}" if policy.fallback_email else "no fallback")
    return (
        f"{departure.evidence} No active workspace member could take it over "
        f"(looked at {', '.join(parts)})."
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
    people = _People(
        directory=normalised_directory,
        managers=by_normalised_address(managers),
        active_members=_active_members(members),
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
            _candidates(incident.id, found, people, codeowners, recent_committers, policy)
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
                    _tried(incident.id, found, people, codeowners, recent_committers, policy),
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
