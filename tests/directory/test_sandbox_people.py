"""The sandbox's generated people, written in the shared LDAP layout, read back by the adapter:
the leaver rules find exactly the people the sandbox made depart, by the markers it chose."""
from __future__ import annotations

import collections

import pytest

from clients.directory import Directory, Status
from tests.directory.test_lookup import settings_for
from tests.fixtures.slapd import Slapd

pytestmark = pytest.mark.slapd

generator = pytest.importorskip("sandbox.generator")


def person_ldif(person) -> str:
    """One entry as the shared layout describes it (the sandbox export writes the same)."""
    lines = [f"dn: {person.dn}", "objectClass: top", "objectClass: person",
             "objectClass: organizationalPerson", "objectClass: inetOrgPerson",
             "objectClass: ggPerson", f"uid: {person.uid}", f"cn: {person.display_name}",
             f"sn: {person.surname}", f"givenName: {person.given_name}",
             f"displayName: {person.display_name}", f"mail: {person.email}"]
    lines += [f"mailAlternateAddress: {alias}" for alias in person.aliases]
    if person.manager_dn:
        lines.append(f"manager: {person.manager_dn}")
    if "employee_type" in person.leaver_markers:
        lines.append("employeeType: former")
    lines.append(f"userAccountControl: {514 if 'disabled_bit' in person.leaver_markers else 512}")
    if "locked" in person.leaver_markers:
        lines.append("pwdAccountLockedTime: 20250101000000Z")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def sandbox_people(slapd: Slapd):
    workspace = generator.generate(seed=7, incidents=50)
    slapd.clear()
    slapd.load_ldif("\n".join(person_ldif(p) for p in workspace.people), exist_ok=False)
    return workspace.people


def test_every_sandbox_person_is_read_with_their_markers(slapd: Slapd, sandbox_people) -> None:
    owners = collections.defaultdict(set)
    for p in sandbox_people:
        for address in (p.email, *p.aliases):
            owners[address].add(p.email)
    with Directory(settings_for(slapd)) as directory:
        answers = directory.lookup(p.email for p in sandbox_people)
        for person in sandbox_people:
            lookup = answers[person.email]
            assert lookup.status is (Status.DEPARTED if person.departed else Status.ACTIVE)
            assert lookup.person.leaver_markers == tuple(person.leaver_markers)
            assert lookup.person.dn == person.dn
        aliases = [a for p in sandbox_people for a in p.aliases]
        for alias, lookup in directory.lookup(aliases).items():
            if len(owners[alias]) > 1:  # two people share it: an error, never a guess
                assert lookup.status is Status.ERROR
            else:
                assert lookup.person.email in owners[alias]
        assert directory.search_count == 1 + -(-len(set(aliases)) // 100)


def test_sandbox_manager_chains(slapd: Slapd, sandbox_people) -> None:
    by_dn = {p.dn: p for p in sandbox_people}
    with Directory(settings_for(slapd)) as directory:
        for person in sandbox_people:
            if not person.manager_dn:
                continue
            found = directory.lookup([person.email])[person.email].person
            chain = directory.manager_chain(found, depth=2)
            manager = by_dn[person.manager_dn]
            assert chain[0].person.dn == manager.dn
            assert chain[0].status is (Status.DEPARTED if manager.departed else Status.ACTIVE)
            if manager.manager_dn:
                assert chain[1].person.dn == manager.manager_dn
            else:
                assert len(chain) == 1
