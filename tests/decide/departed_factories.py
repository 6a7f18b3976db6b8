"""Stand-ins for the API models and directory answers the departed-developer decide reads.

They carry only the attributes `tasks.decide.departed_developers` reads (named as the API names
them), so
the decide tests do not depend on the client's models; one test also runs on the real ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from clients.directory import Lookup, Person, Status
from tasks.decide.departed_developers import DepartedDevelopersPolicy, decide_departed_developers

DOMAIN = "corp.example"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Source:
    full_name: str = "acme/payments-api"


@dataclass(frozen=True)
class Incident:
    id: int
    status: str = "ASSIGNED"
    assignee_email: str | None = None
    assignee_id: int | None = None
    occurrences_count: int | None = None


@dataclass(frozen=True)
class Occurrence:
    id: int
    incident_id: int
    date: datetime = EPOCH
    filepath: str | None = "config/settings.py"
    author_info: str | None = None
    author_name: str | None = None
    source: Source = field(default_factory=Source)


@dataclass(frozen=True)
class Member:
    id: int
    email: str
    active: bool = True
    access_level: str = "member"


def email(name: str) -> str:
    return f"{name}@{DOMAIN}"


def person(name: str, *, aliases: tuple[str, ...] = (), markers: tuple[str, ...] = ()) -> Person:
    return Person(
        dn=f"uid={name},ou=people,dc=corp,dc=example",
        email=email(name),
        aliases=aliases,
        display_name=name.replace(".", " ").title(),
        departed=bool(markers),
        leaver_markers=markers,
    )


def active(name: str, *, aliases: tuple[str, ...] = ()) -> Lookup:
    return Lookup(Status.ACTIVE, person(name, aliases=aliases))


def departed(name: str, *, markers: tuple[str, ...] = ("leavers_ou",),
             aliases: tuple[str, ...] = ()) -> Lookup:
    return Lookup(Status.DEPARTED, person(name, aliases=aliases, markers=markers))


def unknown() -> Lookup:
    return Lookup(Status.UNKNOWN, None, "not in the directory")


def error() -> Lookup:
    return Lookup(Status.ERROR, None, "lookup failed")


def assigned(incident_id: int, name: str, **kwargs) -> Incident:
    return Incident(
        incident_id, "ASSIGNED", assignee_email=email(name), assignee_id=1000 + incident_id,
        **kwargs,
    )


def triggered(incident_id: int, **kwargs) -> Incident:
    return Incident(incident_id, "TRIGGERED", **kwargs)


def occurrence(occurrence_id: int, incident_id: int, author: str | None, *,
               days: int = 0, author_name: str | None = None) -> Occurrence:
    return Occurrence(
        occurrence_id,
        incident_id,
        date=EPOCH + timedelta(days=days),
        author_info=author,
        author_name=author_name,
    )


# --- running the decide (test_departed_developers.py, test_departed_successors.py) ---

ALICE, BOB, CAROL, DAVE, ERIN, FRANK = (
    "alice.adams", "bob.brown", "carol.clark", "dave.davis", "erin.evans", "frank.foster",
)


def decide(incidents, *, directory=None, managers=None, members=(), occurrences=None,
           codeowners=None, committers=None, **policy):
    return decide_departed_developers(
        incidents,
        directory=directory or {},
        managers=managers or {},
        members=list(members),
        occurrences_by_incident=occurrences or {},
        codeowners=codeowners or {},
        recent_committers=committers or {},
        policy=DepartedDevelopersPolicy(**policy),
    )


def members_of(*names: str, inactive: tuple[str, ...] = ()) -> list[Member]:
    return [Member(100 + i, email(n), active=n not in inactive)
            for i, n in enumerate(names + inactive)]


def only_decision(plan):
    assert len(plan.decisions) == 1, (plan.decisions, plan.skips)
    return plan.decisions[0]


def only_skip(plan):
    assert not plan.decisions, plan.decisions
    assert len(plan.skips) == 1, plan.skips
    return plan.skips[0]
