"""The generated directory and workspace: people (a reporting line, leavers, renames), members
of every access level, and the identities that author commits.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.vocabulary import (
    BOT_AUTHORS,
    EMAIL_DOMAIN,
    EXTERNAL_AUTHORS,
    FIRST_NAMES,
    HOSTILE_GIT_AUTHORS,
    HOSTILE_NONGIT_AUTHORS,
    LAST_NAMES,
    LEAVER_MARKERS,
    LEAVERS_OU,
    NOREPLY_AUTHORS,
    PEOPLE_OU,
    _ascii,
    _iso,
    _Weighted,
)
from sandbox.workspace import DirectoryPerson


@dataclass
class _Author:
    """One identity that can author commits: who it is and how the playbooks should see it."""

    name: str
    email: str
    kind: str  # member, non_member, departed, inactive_member, external, bot, noreply, hostile
    person: int | None = None  # index into people
    in_git: bool = True


@dataclass
class _World:
    rng: random.Random
    now: datetime
    people: list[DirectoryPerson] = field(default_factory=list)
    old_emails: dict[int, str] = field(default_factory=dict)  # person -> pre-rename e-mail
    members: list[dict[str, Any]] = field(default_factory=list)
    member_of_person: dict[int, dict[str, Any]] = field(default_factory=dict)
    authors: dict[str, list[_Author]] = field(default_factory=dict)
    levels: list[int] = field(default_factory=list)  # 0 CEO, 1 VP, 2 manager, 3 engineer


def _build_people(world: _World, count: int) -> None:
    rng = world.rng
    used: set[str] = set()
    n_vps = max(2, count // 40)
    n_managers = max(4, count // 8)
    levels = [0] + [1] * n_vps + [2] * n_managers + [3] * (count - 1 - n_vps - n_managers)
    raw: list[tuple[str, str, str]] = []
    for index in range(count):
        given, surname = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if index == 5:  # a name that is markup: it must stay data in every export
            given, surname = "<script>alert(1)</script>", "Tables"
        base = f"{_ascii(given) if index != 5 else 'bobby'}.{_ascii(surname)}"
        uid, n = base, 1
        while uid in used:
            n += 1
            uid = f"{base}{n}"
        used.add(uid)
        raw.append((uid, given, surname))

    managers_of: list[int | None] = []
    by_level: dict[int, list[int]] = {0: [], 1: [], 2: [], 3: []}
    for index, level in enumerate(levels):
        by_level[level].append(index)
    for level in levels:
        managers_of.append(None if level == 0 else rng.choice(by_level[level - 1]))

    departed = [False] * count
    for index, level in enumerate(levels):
        chance = (0.0, 0.2, 0.15, 0.12)[level]
        departed[index] = rng.random() < chance
    # Guaranteed shapes for the reassignment chain: a departed VP with a departed manager under
    # it, so some reports fall through both managers to CODEOWNERS or committers.
    vp0, mgr0 = by_level[1][0], by_level[2][0]
    departed[vp0] = departed[mgr0] = True
    managers_of[mgr0] = vp0
    for eng in by_level[3][:4]:
        managers_of[eng] = mgr0
        departed[eng] = True
    departed[0] = False
    departed[5] = False

    marker_turn = 0
    taken_aliases: set[str] = set()  # an address names one person only
    for index, (uid, given, surname) in enumerate(raw):
        markers: list[str] = []
        if departed[index]:
            markers = [LEAVER_MARKERS[marker_turn % 4]]
            marker_turn += 1
            for extra in LEAVER_MARKERS:
                if extra not in markers and rng.random() < 0.25:
                    markers.append(extra)
            markers.sort(key=LEAVER_MARKERS.index)
        ou = LEAVERS_OU if "leavers_ou" in markers else PEOPLE_OU
        aliases: list[str] = []
        if rng.random() < 0.18:  # "a.martin" for alice.martin, unless anna.martin has it
            short = f"{uid.split('.')[0][:1]}.{uid.split('.', 1)[-1]}@{EMAIL_DOMAIN}"
            if short not in taken_aliases:
                taken_aliases.add(short)
                aliases.append(short)
        if rng.random() < 0.06:
            aliases.append(f"{uid}@mail.{EMAIL_DOMAIN}")
        world.people.append(DirectoryPerson(
            uid=uid, dn=f"uid={uid},{ou}", email=f"{uid}@{EMAIL_DOMAIN}", given_name=given,
            surname=surname, display_name=f"{given} {surname}", aliases=aliases,
            departed=departed[index], leaver_markers=markers,
        ))
        if rng.random() < 0.05:
            world.old_emails[index] = f"{uid.replace('.', '')}@legacy-corp.example"
    for index, manager in enumerate(managers_of):
        if manager is not None:
            world.people[index].manager_dn = world.people[manager].dn
    world.levels = levels


def _member(world: _World, member_id: int, email: str, name: str, level: str,
            active: bool) -> dict[str, Any]:
    rng = world.rng
    created = world.now - timedelta(days=rng.randint(30, 1100), seconds=rng.randint(0, 86399),
                                    microseconds=rng.randint(0, 999999))
    login = None
    if rng.random() < 0.9:
        login = _iso(world.now - timedelta(days=rng.randint(0, 29), seconds=rng.randint(0, 86399),
                                           microseconds=rng.randint(0, 999999)))
    return {"id": member_id, "role": level, "access_level": level, "email": email, "name": name,
            "created_at": _iso(created), "last_login": login, "active": active}


def _build_members(world: _World) -> None:
    rng = world.rng
    levels = world.levels
    member_id = 1000 + rng.randint(0, 500)
    for index, person in enumerate(world.people):
        if person.departed:
            is_member, active = rng.random() < 0.8, rng.random() < 0.6
        else:
            is_member, active = rng.random() < 0.85, rng.random() > 0.04
        if index in (0, 1, 2, 5):  # the owner, first VPs and the markup name have accounts
            is_member, active = True, True
        if not is_member:
            continue
        if index == 0:
            level = "owner"
        elif levels[index] == 1:
            level = "manager"
        elif levels[index] == 2:
            level = "manager" if rng.random() < 0.5 else "member"
        else:
            level = "restricted" if rng.random() < 0.12 else "member"
        email = person.email
        roll = rng.random()
        if roll < 0.12:  # the API keeps the case people typed when invited
            local = person.email.split("@")[0]
            email = f"{local.title()}@Corp.Example" if roll < 0.08 else person.email.upper()
        elif roll < 0.14:
            email = person.email + " "
        member_id += rng.randint(1, 40)
        member = _member(world, member_id, email, person.display_name, level, active)
        world.members.append(member)
        world.member_of_person[index] = member
    world.members[1]["access_level"] = world.members[1]["role"] = "owner"
    # accounts with no directory entry: a contractor, an auditor, and a bot given a seat
    for name, email, level in [("Contractor One", "contractor.one@partner.example", "member"),
                               ("Auditor", "external.auditor@audit.example", "restricted"),
                               ("CI Bot", "ci-bot@corp.example", "member")]:
        member_id += rng.randint(1, 40)
        world.members.append(_member(world, member_id, email, name, level, True))


def _build_authors(world: _World) -> None:
    """Commit identities, grouped by how the playbooks must treat them."""
    groups: dict[str, list[_Author]] = {k: [] for k in (
        "member", "non_member", "departed", "inactive_member", "external", "bot", "noreply",
        "hostile_git", "hostile_nongit")}
    for index, person in enumerate(world.people):
        if "<" in person.display_name:
            continue  # git cannot store that name; it appears only through the API
        member = world.member_of_person.get(index)
        if person.departed:
            kind = "departed"
        elif member is None:
            kind = "non_member"
        elif not member["active"]:
            kind = "inactive_member"
        else:
            kind = "member"
        groups[kind].append(_Author(person.display_name, person.email, kind, index))
        for alias in person.aliases:
            groups[kind].append(_Author(person.display_name, alias, kind, index))
        if index in world.old_emails:
            groups[kind].append(_Author(person.display_name, world.old_emails[index], kind, index))
        if kind == "member" and world.rng.random() < 0.1:
            groups[kind].append(_Author(person.display_name, person.email.title(), kind, index))
    groups["external"] = [_Author(n, e, "external") for n, e in EXTERNAL_AUTHORS]
    groups["bot"] = [_Author(n, e, "bot") for n, e in BOT_AUTHORS]
    groups["noreply"] = [_Author(n, e, "noreply") for n, e in NOREPLY_AUTHORS]
    groups["hostile_git"] = [_Author(n, e, "hostile") for n, e in HOSTILE_GIT_AUTHORS]
    groups["hostile_nongit"] = [_Author(n, e, "hostile", in_git=False)
                                for n, e in HOSTILE_NONGIT_AUTHORS]
    world.authors = {k: v for k, v in groups.items() if v}


_AUTHOR_KINDS = ["member", "non_member", "departed", "inactive_member", "external", "bot",
                 "noreply", "hostile_git", "hostile_nongit"]
_AUTHOR_KIND = _Weighted(_AUTHOR_KINDS, [52, 12, 11, 4, 6, 6, 5, 2, 1])


def _pick_author(world: _World) -> _Author:
    rng = world.rng
    while True:
        group = world.authors.get(_AUTHOR_KIND.pick(rng))
        if group:
            return rng.choice(group)
