"""Inside a flow run (as a deployment would start it), a bad input ends the run Failed with one
line naming what to fix, logged once as `error: ...` with no traceback, nothing written."""
from __future__ import annotations

import logging

import pytest

pytestmark = [pytest.mark.prefect]


@pytest.fixture
def records(prefect_server):
    """Every record of Prefect's loggers during the test (Prefect set up its logging first:
    its dictConfig would drop a handler added earlier, as pytest's caplog is)."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("prefect")
    logger.addHandler(handler)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)


def _errors(records) -> list[logging.LogRecord]:
    return [r for r in records if r.levelno >= logging.ERROR]


def test_a_bad_week_fails_the_report_run_in_one_line(prefect_server, sandbox, tmp_path,
                                                     monkeypatch, records):
    from flows.weekly_report import weekly_report

    monkeypatch.setenv("GITGUARDIAN_API_URL", sandbox.url)
    monkeypatch.setenv("GITGUARDIAN_API_KEY", sandbox.tokens["full"])
    state = weekly_report(week="2026-W99", output_dir=str(tmp_path / "reports"),
                          return_state=True)
    assert state.is_failed()
    assert state.message == "--week 2026-W99: 2026 has no ISO week 99 (its weeks are 01 to 53)"
    errors = _errors(records)
    assert [r.getMessage() for r in errors] == [f"error: {state.message}"]
    assert not any(r.exc_info for r in records)
    assert not (tmp_path / "reports").exists()


def test_a_playbook_run_without_a_directory_fails_in_one_line(prefect_server, sandbox, tmp_path,
                                                              monkeypatch, records):
    from flows.departed_developers import departed_developers
    from tasks.errors import InputError

    for name in ("LDAP_URL", "DIRECTORY_JSON"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITGUARDIAN_API_URL", sandbox.url)
    monkeypatch.setenv("GITGUARDIAN_API_KEY", sandbox.tokens["full"])
    monkeypatch.setenv("LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    before = sandbox.state()["audit_logs"]
    state = departed_developers(dry_run=False, return_state=True)
    assert state.is_failed()
    assert state.message.startswith("no directory configured: set LDAP_URL")
    assert isinstance(state.result(raise_on_failure=False), InputError)
    assert [r.getMessage() for r in _errors(records)] == [f"error: {state.message}"]
    assert not any(r.exc_info for r in records)
    assert not (tmp_path / "ledger.sqlite").exists()
    assert sandbox.state()["audit_logs"] == before
