"""The directory adapter against a real slapd: leaver rules, aliases, chains, batching."""
from __future__ import annotations

import pytest

from clients.directory import Directory, DirectorySettings, Lookup, Status, leaver_filter
from tests.fixtures.slapd import LEAVERS_OU, Slapd

pytestmark = pytest.mark.slapd


def settings_for(server: Slapd, **overrides) -> DirectorySettings:
    values = dict(url=server.url, bind_dn=server.bind_dn, password=server.password,
                  base_dn=server.base_dn, leavers_ou=LEAVERS_OU)
    values.update(overrides)
    return DirectorySettings(**values)


@pytest.fixture
def directory(people: Slapd):
    with Directory(settings_for(people)) as directory:
        yield directory


def one(directory: Directory, email: str) -> Lookup:
    return directory.lookup([email])[email.strip().casefold()]


@pytest.mark.parametrize(
    ("email", "markers"),
    [
        ("olivia.ou@corp.example", ("leavers_ou",)),
        ("eve.former@corp.example", ("employee_type",)),
        ("dan.disabled@corp.example", ("disabled_bit",)),
        ("dora.disabled@corp.example", ("disabled_bit",)),
        ("leo.locked@corp.example", ("locked",)),
        ("derek.departed@corp.example", ("employee_type",)),
    ],
)
def test_each_leaver_rule_marks_a_departure(directory: Directory, email: str, markers) -> None:
    lookup = one(directory, email)
    assert lookup.status is Status.DEPARTED
    assert lookup.person is not None and lookup.person.departed
    assert lookup.person.leaver_markers == markers


@pytest.mark.parametrize(
    "email", ["ada.active@corp.example", "nora.noexpiry@corp.example", "bob.boss@corp.example"]
)
def test_people_without_a_marker_are_active(directory: Directory, email: str) -> None:
    lookup = one(directory, email)
    assert lookup.status is Status.ACTIVE
    assert lookup.person is not None and lookup.person.leaver_markers == ()


@pytest.mark.parametrize(
    ("override", "email"),
    [
        ({"leavers_ou": None}, "olivia.ou@corp.example"),
        ({"leaver_attribute": None}, "eve.former@corp.example"),
        ({"disabled_bit": False}, "dan.disabled@corp.example"),
        ({"lock_attribute": None}, "leo.locked@corp.example"),
    ],
)
def test_a_rule_switched_off_no_longer_marks(people: Slapd, override, email: str) -> None:
    with Directory(settings_for(people, **override)) as directory:
        assert one(directory, email).status is Status.ACTIVE


def test_person_fields_and_case_insensitive_match(directory: Directory) -> None:
    lookup = one(directory, "  ADA.active@corp.EXAMPLE ")
    assert lookup.status is Status.ACTIVE and lookup.person is not None
    person = lookup.person
    assert person.dn == "uid=ada.active,ou=people,dc=corp,dc=example"
    assert person.email == "ada.active@corp.example"
    assert person.aliases == ("ada@corp.example",)
    assert person.display_name == "Ada Active"
    assert person.manager_dn == "uid=mia.manager,ou=people,dc=corp,dc=example"


def test_alias_addresses_find_the_person(directory: Directory) -> None:
    answers = directory.lookup(["Ada@corp.example", "pat@corp.example", "PAT.proxy@corp.example"])
    assert answers["ada@corp.example"].person.email == "ada.active@corp.example"
    # proxyAddresses: the smtp: prefix is stripped, x500: values are not addresses.
    pat = answers["pat@corp.example"].person
    assert pat.email == "pat.proxy@corp.example"
    assert pat.aliases == ("pat@corp.example",)
    assert answers["pat.proxy@corp.example"].person == pat


def test_unknown_address_and_ambiguous_alias(directory: Directory) -> None:
    answers = directory.lookup(["nobody@corp.example", "shared@corp.example"])
    assert answers["nobody@corp.example"].status is Status.UNKNOWN
    # Two entries claim it: an error, never a guess and never "unknown".
    assert answers["shared@corp.example"].status is Status.ERROR
    assert "ambiguous" in answers["shared@corp.example"].detail


def test_an_alias_attribute_missing_from_the_schema_is_harmless(people: Slapd) -> None:
    settings = settings_for(people)
    attributes = settings.attributes.model_copy(
        update={"aliases": ("mailAlternateAddress", "msExchNotInThisSchema")})
    with Directory(settings.model_copy(update={"attributes": attributes})) as directory:
        answers = directory.lookup(["ada@corp.example", "bob.boss@corp.example"])
    assert answers["ada@corp.example"].status is Status.ACTIVE
    assert answers["bob.boss@corp.example"].status is Status.ACTIVE


def test_manager_chain_goes_through_departed_managers(directory: Directory) -> None:
    carl = one(directory, "carl.chain@corp.example").person
    chain = directory.manager_chain(carl, depth=2)
    assert [(step.status, step.person.email) for step in chain] == [
        (Status.DEPARTED, "derek.departed@corp.example"),
        (Status.ACTIVE, "erin.exec@corp.example"),
    ]
    deeper = directory.manager_chain(carl, depth=3)
    assert [step.person.email for step in deeper][-1] == "fay.founder@corp.example"
    assert directory.manager_chain(carl, depth=1) == chain[:1]


def test_manager_chain_stops_at_the_top_and_at_a_missing_manager(directory: Directory) -> None:
    ada = one(directory, "ada.active@corp.example").person
    assert [s.person.email for s in directory.manager_chain(ada, depth=5)] == [
        "mia.manager@corp.example", "bob.boss@corp.example"]
    gus = one(directory, "gus.ghosted@corp.example").person
    assert directory.manager_chain(gus, depth=2) == []


def test_managers_are_read_once_per_directory(directory: Directory) -> None:
    ada = one(directory, "ada.active@corp.example").person
    olivia = one(directory, "olivia.ou@corp.example").person
    directory.manager_chain(ada, depth=1)
    before = directory.search_count
    assert directory.manager_chain(olivia, depth=1)[0].person.email == "mia.manager@corp.example"
    assert directory.search_count == before


def test_batches_of_at_most_100_addresses(people: Slapd) -> None:
    wanted = [f"bulk.{n:03d}@corp.example" for n in range(120)]
    wanted += [f"nobody.{n}@corp.example" for n in range(130)]
    with Directory(settings_for(people)) as directory:
        answers = directory.lookup(wanted)
        assert directory.search_count == 3  # 250 addresses
        assert len(answers) == 250
        assert all(answers[a].status is Status.ACTIVE for a in wanted[:120])
        assert all(answers[a].status is Status.UNKNOWN for a in wanted[120:])
        # Cached: asking again costs no search.
        assert directory.lookup(wanted[:10]) == {a: answers[a] for a in wanted[:10]}
        assert directory.search_count == 3


def test_small_pages_still_return_every_entry(people: Slapd) -> None:
    wanted = [f"bulk.{n:03d}@corp.example" for n in range(100)]
    with Directory(settings_for(people, page_size=30)) as directory:
        answers = directory.lookup(wanted)
        assert directory.search_count == 4  # one batch, four pages
    assert all(answers[a].status is Status.ACTIVE for a in wanted)


def test_truncated_answer_is_an_error_never_unknown(people: Slapd) -> None:
    # The small reader's searches stop at 5 entries; ask for 8 people in one batch.
    settings = settings_for(people, bind_dn=people.small_reader_dn,
                            password=people.small_reader_password)
    wanted = [f"bulk.{n:03d}@corp.example" for n in range(people.small_reader_limit + 3)]
    with Directory(settings) as directory:
        answers = directory.lookup(wanted)
    assert {answers[a].status for a in wanted} == {Status.ERROR}
    assert "size limit" in answers[wanted[0]].detail


def test_within_the_limit_the_small_reader_gets_answers(people: Slapd) -> None:
    settings = settings_for(people, bind_dn=people.small_reader_dn,
                            password=people.small_reader_password)
    with Directory(settings) as directory:
        answers = directory.lookup(["bulk.000@corp.example", "nobody@corp.example"])
    assert answers["bulk.000@corp.example"].status is Status.ACTIVE
    assert answers["nobody@corp.example"].status is Status.UNKNOWN


def test_server_side_leaver_filter_agrees_with_the_python_rules(people: Slapd) -> None:
    settings = settings_for(people)
    with people.connection() as conn:
        conn.search(people.base_dn, f"(&(objectClass=person){leaver_filter(settings)})",
                    attributes=["mail"])
        by_filter = {e["attributes"]["mail"][0].casefold() for e in conn.response}
    expected = {"eve.former@corp.example", "dan.disabled@corp.example",
                "dora.disabled@corp.example", "leo.locked@corp.example",
                "derek.departed@corp.example"}  # olivia: the OU is a base, not a filter
    assert by_filter == expected
    with Directory(settings) as directory:
        answers = directory.lookup(sorted(expected))
    assert {a for a, lookup in answers.items() if lookup.status is Status.DEPARTED} == expected
