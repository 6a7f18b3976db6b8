"""The offline path (ldap3's mock over a JSON export) answers like the real server."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from ldap3 import SUBTREE

from clients.directory import Directory, DirectorySettings, DirectoryUnavailable, Status
from tests.directory.conftest import PEOPLE_LDIF
from tests.directory.test_lookup import settings_for
from tests.fixtures.slapd import LEAVERS_OU, Slapd, parse_ldif

ADDRESSES = [
    "ada.active@corp.example", "ADA@corp.example", "olivia.ou@corp.example",
    "eve.former@corp.example", "dan.disabled@corp.example", "dora.disabled@corp.example",
    "nora.noexpiry@corp.example", "leo.locked@corp.example", "pat@corp.example",
    "pat.proxy@corp.example", "shared@corp.example", "nobody@corp.example",
    "*@corp.example", "*)(uid=*@corp.example", "odd(*)\\chars@corp.example",
]


def export_from_ldif(path: Path) -> Path:
    entries = [{"dn": dn, "raw": attrs, "attributes": attrs}
               for dn, attrs in parse_ldif(PEOPLE_LDIF)]
    path.write_text(json.dumps({"entries": entries}))
    return path


def summary(answers):
    return {a: (x.status, x.person.dn if x.person else None,
                x.person.leaver_markers if x.person else ()) for a, x in answers.items()}


def test_offline_rules_aliases_and_chains(tmp_path: Path) -> None:
    path = export_from_ldif(tmp_path / "directory.json")
    settings = DirectorySettings(leavers_ou=LEAVERS_OU)  # base DN derived from the export
    with Directory.offline(path, settings) as directory:
        answers = directory.lookup(ADDRESSES)
        assert directory.settings.base_dn == "dc=corp,dc=example"
        assert answers["ada@corp.example"].person.email == "ada.active@corp.example"
        assert answers["olivia.ou@corp.example"].person.leaver_markers == ("leavers_ou",)
        assert answers["dora.disabled@corp.example"].status is Status.DEPARTED
        assert answers["nora.noexpiry@corp.example"].status is Status.ACTIVE
        assert answers["leo.locked@corp.example"].status is Status.DEPARTED
        assert answers["pat@corp.example"].person.email == "pat.proxy@corp.example"
        assert answers["nobody@corp.example"].status is Status.UNKNOWN
        assert answers["*@corp.example"].status is Status.UNKNOWN
        assert answers["odd(*)\\chars@corp.example"].status is Status.ACTIVE
        carl = directory.lookup(["carl.chain@corp.example"])["carl.chain@corp.example"].person
        assert [s.person.email for s in directory.manager_chain(carl, depth=2)] == [
            "derek.departed@corp.example", "erin.exec@corp.example"]
        gus = directory.lookup(["gus.ghosted@corp.example"])["gus.ghosted@corp.example"].person
        assert directory.manager_chain(gus) == []
        # Task runners may pickle it: the copy reconnects to the same export.
        copy = pickle.loads(pickle.dumps(directory))
        assert copy.lookup(["eve.former@corp.example"])["eve.former@corp.example"].status \
            is Status.DEPARTED


def test_offline_missing_export_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DirectoryUnavailable, match="offline-directory|unavailable"):
        Directory.offline(tmp_path / "missing.json", DirectorySettings(base_dn="dc=corp,dc=example")
                          ).lookup(["ada.active@corp.example"])


@pytest.mark.slapd
def test_offline_export_of_the_server_answers_the_same(people: Slapd, tmp_path: Path) -> None:
    # Export the way a sandbox or an operator would: ldap3's JSON with raw values.
    with people.connection() as conn:
        conn.search(people.base_dn, "(objectClass=person)", SUBTREE, attributes=["*", "+"],
                    paged_size=1000)
        path = tmp_path / "directory.json"
        path.write_text(conn.response_to_json(raw=True))
    with Directory(settings_for(people)) as online:
        expected = summary(online.lookup(ADDRESSES))
    settings = settings_for(people).model_copy(update={"url": "", "password": ""})
    with Directory.offline(path, settings) as offline:
        assert summary(offline.lookup(ADDRESSES)) == expected
