"""Addresses come from commit metadata, which an attacker writes: they must never widen a search."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clients.directory import Directory, DirectorySettings, Status, address_filter
from tests.directory.test_lookup import settings_for
from tests.fixtures.slapd import Slapd

pytestmark = pytest.mark.slapd

HOSTILE = [
    "*)(uid=*@corp.example",
    "*@corp.example",
    "ada.active@corp.example)(mail=*",
    "*)(|(mail=*)@corp.example",
    "ada\\2a@corp.example",
    "\\2a@corp.example",
    "a*@corp.example",
    "(mail=*)@corp.example",
]


@pytest.fixture
def directory(people: Slapd):
    with Directory(settings_for(people)) as directory:
        yield directory


@pytest.mark.parametrize("address", HOSTILE)
def test_filter_metacharacters_match_nothing(directory: Directory, address: str) -> None:
    # Unescaped, each of these would match many or all people (or an error, read as a guess).
    lookup = directory.lookup([address])[address]
    assert lookup.status is Status.UNKNOWN
    assert directory.search_count == 1  # it was searched, not dismissed as implausible
    assert directory.entries_read == 0  # and the server matched no entry at all


def test_a_real_address_with_metacharacters_is_found_exactly(directory: Directory) -> None:
    address = "odd(*)\\chars@corp.example"
    lookup = directory.lookup([address])[address]
    assert lookup.status is Status.ACTIVE
    assert lookup.person.dn == "uid=odd.chars,ou=people,dc=corp,dc=example"
    assert directory.entries_read == 1


@pytest.mark.parametrize(
    "address",
    ["ada.active@corp.example\x00", "ada.active\x00@corp.example", "*", "no-at-sign",
     "two@@corp.example", "space in@corp.example", "ada.active@corp.example\n(uid=*)", ""],
)
def test_implausible_addresses_are_unknown_without_a_search(directory: Directory,
                                                            address: str) -> None:
    answers = directory.lookup([address])
    assert [lookup.status for lookup in answers.values()] == [Status.UNKNOWN]
    assert directory.search_count == 0


def test_every_value_is_escaped_in_the_filter() -> None:
    settings = DirectorySettings(url="ldap://localhost", base_dn="dc=corp,dc=example")
    text = address_filter(settings, ["a*)(uid=*\\\x00@corp.example"])
    assert "a\\2a\\29\\28uid=\\2a\\5c\\00@corp.example" in text
    # One component per attribute and address, plus the person filter: nothing injected.
    assert text.count("(") == text.count(")") == 2 + 1 + 3
    assert "(proxyAddresses=smtp:a\\2a" in text


local_parts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(local=local_parts)
def test_any_address_matches_only_a_person_who_has_it(people: Slapd, local: str) -> None:
    address = f"{local}@corp.example"
    with Directory(settings_for(people)) as directory:
        for key, lookup in directory.lookup([address]).items():
            if lookup.status in (Status.ACTIVE, Status.DEPARTED):
                assert key in (lookup.person.email, *lookup.person.aliases)
            else:
                assert lookup.status is Status.UNKNOWN
