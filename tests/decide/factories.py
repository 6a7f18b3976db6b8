"""Builders of incidents, occurrences, members and directory lookups for the decide tests.

They build the real pydantic models of clients/models.py, with fields a test does not care
about filled with plain, obviously fake values.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from clients.directory import Lookup, Person, Status
from clients.models import Incident, Member, Occurrence

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def incident(
    id: int = 1,
    *,
    status: str = "TRIGGERED",
    validity: str | None = "invalid",
    severity: str | None = "high",
    tags: list[str] | None = None,
    occurrences_count: int | None = 1,
    detector: str = "generic_password",
    detector_group: str | None = None,
    assignee_email: str | None = None,
    assignee_id: int | None = None,
) -> Incident:
    return Incident(
        id=id,
        detector={"name": detector, "detector_group_name": detector_group or detector},
        date=EPOCH,
        status=status,
        validity=validity,
        severity=severity,
        tags=list(tags or []),
        occurrences_count=occurrences_count,
        assignee_email=assignee_email,
        assignee_id=assignee_id,
    )


def occurrence(
    id: int,
    incident_id: int = 1,
    *,
    filepath: str | None = "tests/test_settings.py",
    author: str | None = "dev.one@corp.example",
    author_name: str | None = "Dev One",
    days: float = 0,
    tags: list[str] | None = None,
    source: str | None = "acme/payments-api",
) -> Occurrence:
    return Occurrence(
        id=id,
        incident_id=incident_id,
        date=EPOCH + timedelta(days=days),
        filepath=filepath,
        author_info=author,
        author_name=author_name,
        tags=list(tags or []),
        sha="0" * 40,
        kind="historical",
        presence="present",
        source={"id": abs(hash(source)) % 10_000, "full_name": source} if source else None,
    )


def member(
    id: int,
    email: str,
    *,
    active: bool = True,
    name: str | None = None,
    access_level: str = "member",
) -> Member:
    name = name or email.split("@")[0]
    return Member(id=id, email=email, name=name, active=active, access_level=access_level)


def person(email: str, *, aliases: tuple[str, ...] = (), departed: bool = False) -> Person:
    return Person(
        dn=f"uid={email.split('@')[0]},ou=people,dc=corp,dc=example",
        email=email.strip().casefold(),
        aliases=tuple(a.strip().casefold() for a in aliases),
        departed=departed,
        leaver_markers=("leavers_ou",) if departed else (),
    )


def active(email: str, *aliases: str) -> Lookup:
    return Lookup(Status.ACTIVE, person(email, aliases=aliases))


def departed(email: str, *aliases: str) -> Lookup:
    return Lookup(Status.DEPARTED, person(email, aliases=aliases, departed=True))


def unknown() -> Lookup:
    return Lookup(Status.UNKNOWN)


def error() -> Lookup:
    return Lookup(Status.ERROR, detail="lookup failed")


def by_incident(*occurrences: Any) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {}
    for o in occurrences:
        grouped.setdefault(o.incident_id, []).append(o)
    return grouped
