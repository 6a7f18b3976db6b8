"""Whom the SLA escalation ladder tells: the incident's owner and their manager. Pure.

Part of the SLA escalation playbook (tasks/decide/sla_escalation.py): the owner is the assignee,
or for an unassigned incident the most recent human commit author who is an active member; the
manager is the nearest one up the directory's chain whom it knows as active (tri-state, as in
tasks/decide/evidence.py).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from clients.directory import Lookup, Status
from tasks.decide.evidence import (
    AUTHOR_LOOKUP_ERROR,
    DIRECTORY_ERROR,
    MANAGER_LOOKUP_ERROR,
    Evidence,
    first_yes,
    from_directory,
)
from tasks.decide.identity import is_bot_or_noreply, normalise_email
from tasks.decide.paths import printable
from tasks.decide.plan import Skip
from tasks.decide.sla_stages import IncidentView

# Skip reasons, stable (re-exported by tasks/decide/sla_escalation.py with the others).
SKIP_NO_RECIPIENT = "no_recipient"  # stage 1: no assignee or member author to tell
SKIP_ASSIGNEE_DEPARTED = "assignee_departed"  # the departed-developer playbook's incident
SKIP_NO_MANAGER = "no_manager"  # stage 2: the directory names no active manager
SKIP_DIRECTORY_ERROR = DIRECTORY_ERROR
SKIP_MANAGER_LOOKUP_ERROR = MANAGER_LOOKUP_ERROR
SKIP_AUTHOR_LOOKUP_ERROR = AUTHOR_LOOKUP_ERROR


@dataclass(frozen=True)
class People:
    directory: Mapping[str, Lookup]
    managers: Mapping[str, Sequence[Lookup]]
    members: Mapping[str, Any]  # active members by normalised e-mail

    def member_of(self, lookup: Lookup | None, *also: str) -> Any | None:
        addresses = list(also)
        if lookup is not None and lookup.person is not None:
            addresses += [lookup.person.email, *lookup.person.aliases]
        for address in addresses:
            member = self.members.get(normalise_email(address))
            if member is not None:
                return member
        return None


def active_members(members: Iterable[Any]) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for member in sorted(members, key=lambda m: m.id):
        address = normalise_email(member.email)
        if member.active is True and address and not is_bot_or_noreply(address):
            index.setdefault(address, member)
    return index


@dataclass(frozen=True)
class Owner:
    address: str  # normalised: the person told at stage 1, whose manager is told at stage 2
    role: str  # "the assignee" / "the commit author"


def owner_of(incident: IncidentView, occurrences: Sequence[Any],
             people: People) -> Owner | Skip:
    """Who holds the incident: its assignee, or its most recent human member author."""
    assignee = normalise_email(incident.assignee_email)
    if assignee:
        lookup = people.directory.get(assignee)
        if lookup is None or lookup.status is Status.ERROR:
            found = from_directory(lookup, reason=SKIP_DIRECTORY_ERROR,
                                   subject=f"the assignee {printable(assignee, 120)}")
            return found.skip(incident.id)
        if lookup.status is Status.DEPARTED or (lookup.person and lookup.person.departed):
            return Skip(incident.id, SKIP_ASSIGNEE_DEPARTED,
                        f"The assignee {printable(assignee, 120)} left the company: the "
                        "departed-developer playbook hands the incident over first.")
        return Owner(assignee, "the assignee")
    dated = sorted(occurrences, key=lambda o: (o.date is not None, o.date, o.id), reverse=True)
    for occurrence in dated:
        address = normalise_email(occurrence.author_info)
        if is_bot_or_noreply(address, getattr(occurrence, "author_name", None)):
            continue
        # The most recent human author only: an older one did not leak it last.
        member = people.members.get(address)
        lookup = people.directory.get(address)
        if member is None:
            if lookup is not None and lookup.status is Status.ERROR:
                return from_directory(lookup, reason=SKIP_AUTHOR_LOOKUP_ERROR,
                                      subject=f"the commit author {printable(address, 120)}"
                                      ).skip(incident.id)
            if lookup is not None and lookup.status is Status.ACTIVE:
                member = people.member_of(lookup)
        if lookup is not None and (lookup.status is Status.DEPARTED
                                   or (lookup.person is not None and lookup.person.departed)):
            member = None
        if member is None:
            return Skip(incident.id, SKIP_NO_RECIPIENT,
                        f"The incident is unassigned and its most recent commit author "
                        f"{printable(address, 120)} is not an active workspace member.")
        return Owner(normalise_email(member.email), "the commit author")
    return Skip(incident.id, SKIP_NO_RECIPIENT,
                "The incident is unassigned and no human commit author is known.")


def manager_of(incident_id: int, owner: Owner, people: People,
               depth: int) -> Evidence[Any] | Skip:
    """The owner's nearest manager the directory knows as active (tri-state)."""
    lookup = people.directory.get(owner.address)
    subject = f"{owner.role} {printable(owner.address, 120)}"
    if lookup is None or lookup.status is Status.ERROR:
        return from_directory(lookup, reason=SKIP_DIRECTORY_ERROR, subject=subject
                              ).skip(incident_id)
    if lookup.person is None:
        return Skip(incident_id, SKIP_NO_MANAGER,
                    f"The directory does not know {subject}: no manager to tell.")
    chain = list(people.managers.get(owner.address, ()))[:depth]

    def candidates() -> Iterable[Evidence[Any]]:
        for level, step in enumerate(chain, start=1):
            title = "manager" if level == 1 else f"manager at level {level}"
            yield from_directory(step, reason=SKIP_MANAGER_LOOKUP_ERROR,
                                 subject=f"the {title} of {subject}")

    found = first_yes(candidates())
    if found.is_unknown:
        return found.skip(incident_id)
    if found.value is None:
        return Skip(incident_id, SKIP_NO_MANAGER,
                    f"No active manager of {subject} in the directory (looked at "
                    f"{len(chain)} level(s), up to {depth}).")
    return found
