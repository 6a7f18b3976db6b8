"""Who takes over a departed developer's incident: the successor chain. Pure.

Part of the departed-developer playbook (tasks/decide/departed_developers.py): each leaver's
managers, then CODEOWNERS owners, then recent committers, then the policy's fallback; a
candidate whose lookup failed stops the chain (tri-state, tasks/decide/evidence.py).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from clients.directory import Lookup, Person, Status
from tasks.decide.evidence import (
    COMMITTER_LOOKUP_ERROR,
    FALLBACK_LOOKUP_ERROR,
    MANAGER_LOOKUP_ERROR,
    OWNER_LOOKUP_ERROR,
    Evidence,
    from_directory,
    listed,
)
from tasks.decide.identity import is_bot_or_noreply, normalise_email

if TYPE_CHECKING:
    from tasks.decide.departed_developers import DepartedDevelopersPolicy

# Reason codes (the successor's provenance), stable: the plan table, the ledger and the
# sandbox's ground truth use them.
REASON_MANAGER = "manager"
REASON_CODEOWNER = "codeowner"
REASON_RECENT_COMMITTER = "recent_committer"
REASON_FALLBACK = "fallback"


class MemberView(Protocol):
    id: int
    email: str
    active: bool | None


# --- inputs, normalised once ------------------------------------------------------------------


@dataclass(frozen=True)
class People:
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


def active_members(members: Iterable[MemberView]) -> dict[str, MemberView]:
    """Active members by normalised e-mail; on duplicates the lowest id wins (determinism)."""
    index: dict[str, MemberView] = {}
    for member in sorted(members, key=lambda m: m.id):
        address = normalise_email(member.email)
        if member.active and address and not is_bot_or_noreply(address):
            index.setdefault(address, member)
    return index


@dataclass(frozen=True)
class Departure:
    """An incident to take over: who held it, who left, and what the directory said."""

    old_assignee: str | None  # as the API listed it; None for an unassigned incident
    leavers: tuple[str, ...]  # normalised addresses, most relevant first
    evidence: str


# --- who takes over ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Successor:
    member: MemberView
    reason: str
    why: str


def _excluded(address: str, departure: Departure, people: People) -> str | None:
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


def _eligible(address: str, departure: Departure, people: People) -> MemberView | None:
    """The active member behind this address, if they may receive the incident."""
    if _excluded(address, departure, people) is not None:
        return None
    return people.active_members.get(address)


def _account_of(person: Person, departure: Departure, people: People,
                *also: str) -> MemberView | None:
    """The active member account of a person the directory answered as active, under their
    primary address, an alias or `also`."""
    for address in (person.email, *person.aliases, *also):
        member = _eligible(normalise_email(address), departure, people)
        if member is not None:
            return member
    return None


def _managers(departure: Departure, people: People, depth: int) -> Iterator[Evidence[_Successor]]:
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
    departure: Departure, people: People, *, reason: str, role: str, lookup_error: str,
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


def _vouched(lookup: Lookup | None, departure: Departure, people: People, *also: str,
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


def _fallback(address: str, departure: Departure, people: People) -> Evidence[_Successor]:
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


def candidates(
    incident_id: int,
    departure: Departure,
    people: People,
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


def tried(
    incident_id: int,
    departure: Departure,
    people: People,
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
