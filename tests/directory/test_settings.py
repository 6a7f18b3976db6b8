"""Settings, secrets and outages: no password in any repr, log or message."""
from __future__ import annotations

import logging

import pytest
from pydantic import SecretStr

from clients.directory import (
    Directory,
    DirectorySettings,
    DirectoryUnavailable,
    Lookup,
    Status,
    disabled_filter,
    leaver_filter,
)
from tests.directory.conftest import PEOPLE_LDIF
from tests.directory.test_lookup import settings_for
from tests.fixtures.slapd import Slapd, free_port


def test_from_env_reads_the_documented_names() -> None:
    settings = DirectorySettings.from_env({
        "LDAP_URL": "ldaps://ldap.corp.example:636",
        "LDAP_BIND_DN": "cn=reader,dc=corp,dc=example",
        "LDAP_PASSWORD": "test-password-value",
        "LDAP_BASE_DN": "dc=corp,dc=example",
        "LDAP_LEAVERS_OU": "ou=leavers,dc=corp,dc=example",
        "LDAP_START_TLS": "false",
    })
    assert settings.url == "ldaps://ldap.corp.example:636"
    assert settings.bind_dn == "cn=reader,dc=corp,dc=example"
    assert settings.password_value() == "test-password-value"
    assert settings.base_dn == "dc=corp,dc=example"
    assert settings.leavers_ou == "ou=leavers,dc=corp,dc=example"
    assert settings.start_tls is False
    assert settings.batch_size == 100
    assert "test-password-value" not in repr(settings)
    assert "test-password-value" not in str(settings)
    assert "test-password-value" not in settings.model_dump_json()


def test_empty_environment_gives_empty_settings_not_an_error() -> None:
    settings = DirectorySettings.from_env({})
    assert settings.url == "" and settings.leavers_ou is None


def test_a_plain_string_password_copied_in_still_does_not_print() -> None:
    settings = DirectorySettings(url="ldap://h").model_copy(update={"password": "plain-pw-value"})
    assert settings.password_value() == "plain-pw-value"
    assert "plain-pw-value" not in repr(settings)
    assert "plain-pw-value" not in repr(Directory(settings))
    assert "plain-pw-value" not in str(settings.model_dump())
    assert "plain-pw-value" not in settings.model_dump_json()


def test_batches_cannot_exceed_100() -> None:
    with pytest.raises(ValueError):
        DirectorySettings(batch_size=101)


def test_server_side_filters() -> None:
    assert disabled_filter() == "(userAccountControl:1.2.840.113556.1.4.803:=2)"
    assert leaver_filter(DirectorySettings()) == (
        "(|(userAccountControl:1.2.840.113556.1.4.803:=2)(employeeType=former)"
        "(pwdAccountLockedTime=*))")
    assert leaver_filter(DirectorySettings(disabled_bit=False, lock_attribute=None)) == (
        "(employeeType=former)")


def test_no_server_raises_unavailable_naming_the_host(caplog) -> None:
    port = free_port()
    settings = DirectorySettings(url=f"ldap://127.0.0.1:{port}", bind_dn="cn=admin",
                                 password=SecretStr("test-secret-never-shown"),
                                 base_dn="dc=corp,dc=example", connect_timeout=2)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DirectoryUnavailable) as raised:
        Directory(settings).lookup(["ada.active@corp.example"])
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert "test-secret-never-shown" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert "test-secret-never-shown" not in caplog.text


@pytest.mark.slapd
def test_wrong_password_is_unavailable_without_the_password(people: Slapd) -> None:
    settings = settings_for(people, password="test-wrong-password")
    with pytest.raises(DirectoryUnavailable) as raised:
        Directory(settings).lookup(["ada.active@corp.example"])
    assert people.url in str(raised.value)
    assert "test-wrong-password" not in str(raised.value)
    assert people.password not in str(raised.value)


@pytest.mark.slapd
def test_server_stopped_mid_run_gives_errors_then_unavailable(slapd_factory) -> None:
    server = slapd_factory()
    server.load_ldif(PEOPLE_LDIF)
    directory = Directory(settings_for(server))
    assert directory.lookup(["ada.active@corp.example"])["ada.active@corp.example"].status \
        is Status.ACTIVE
    server.stop()
    # Already running: the batch fails with ERROR (never UNKNOWN, never DEPARTED)...
    later = directory.lookup(["bob.boss@corp.example", "nobody@corp.example"])
    assert {lookup.status for lookup in later.values()} == {Status.ERROR}
    # ...the cached answer stays, and errors are not cached.
    assert directory.lookup(["ada.active@corp.example"])["ada.active@corp.example"].status \
        is Status.ACTIVE
    # A run that starts during the outage stops before answering anything.
    with pytest.raises(DirectoryUnavailable):
        Directory(settings_for(server)).lookup(["bob.boss@corp.example"])
    with pytest.raises(DirectoryUnavailable):
        directory.lookup(["bob.boss@corp.example"])


def test_a_directory_pickles_without_its_connection() -> None:
    import pickle

    directory = Directory(DirectorySettings(url="ldap://127.0.0.1:1"))
    directory._by_email["x@corp.example"] = Lookup(Status.ACTIVE, detail="cached")
    copy = pickle.loads(pickle.dumps(directory))
    assert copy._connection is None
    # Answered from the carried cache: no connection to the closed port is attempted.
    assert copy.lookup(["x@corp.example"])["x@corp.example"].detail == "cached"


def test_missing_slapd_fails_under_ci_and_skips_elsewhere(monkeypatch) -> None:
    from tests.fixtures import slapd as fixture

    monkeypatch.setattr(fixture, "SLAPD", "/nonexistent/slapd")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required under CI"):
        fixture.require_slapd()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="slapd not available"):
        fixture.require_slapd()
