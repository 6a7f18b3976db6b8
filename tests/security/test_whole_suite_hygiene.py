"""Secret hygiene over the whole test suite (issue 8): the suite ran with a canary API key in
every sandbox, canary LDAP passwords in every slapd, and share links of a recognisable form
(tests/fixtures/canary.py). This test runs last and reads everything the suite left behind.

`test_secret_hygiene.py` provokes the interesting paths on purpose (shares, refused keys and
binds); this one shows that nothing else in the suite, run as a user would run the product,
leaked either: the DEBUG log of our loggers, the Prefect server's logs (run loggers at INFO),
artifacts, run states and parameters, every file the tests wrote (reports, ledgers,
Prefect homes of the deployment tests, worker logs), and every test report's text.
"""
from __future__ import annotations

import gc
import logging
import sqlite3
from pathlib import Path

import pytest

from tests.fixtures import canary

pytestmark = [pytest.mark.runs_last, pytest.mark.prefect]

# Prefect keeps Secret blocks in this table, encrypted; it is where the key is meant to be.
_SECRET_STORE_TABLES = {"block_document"}
_BIGGEST_FILE = 64 * 1024 * 1024


def _sqlite_text(path: Path) -> str:
    """Every row of every table of an SQLite file, as text (the Secret blocks' table apart)."""
    rows = []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = [r[0] for r in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table in _SECRET_STORE_TABLES:
                continue
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                rows.append(f"{table}: {row!r}")
    finally:
        connection.close()
    return "\n".join(rows)


def _file_text(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(b"SQLite format 3"):
        return _sqlite_text(path)
    return path.read_bytes().decode("utf-8", "replace")


def _prefect_database() -> Path:
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    return Path(url.split(":///", 1)[1])


def test_nothing_the_suite_left_holds_a_canary(request, prefect_server, tmp_path_factory):
    if len(request.session.items) < 200:
        pytest.skip("reads what the whole suite left behind: run it with the whole suite")
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    leaks: list[str] = list(canary.report_leaks)
    assert canary.reports_scanned > 200

    # The DEBUG log: still attached (Prefect did not reconfigure logging under it), and it holds
    # the client's request lines and the playbooks' run logs, so the scan below reads them.
    handler = canary.handler()
    assert handler is not None and handler in logging.getLogger("clients").handlers
    handler.flush()
    log = canary.LOG_FILE.read_text(encoding="utf-8", errors="replace")
    assert "clients.gitguardian DEBUG GET /v1/incidents/secrets" in log
    leaks += [f"{what} in the suite's log" for what in canary.secrets_in(log)]

    # What the session's Prefect server stores: logs, artifacts, runs, states, parameters.
    database = _prefect_database()
    stored = _sqlite_text(database)
    for table in ("log", "artifact", "flow_run", "task_run", "flow_run_state"):
        assert f"\n{table}: " in f"\n{stored}", f"the Prefect database holds no {table} row"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        run_logs = connection.execute(
            "SELECT count(*) FROM log WHERE level = 20 AND name = 'prefect.flow_runs'"
        ).fetchone()[0]
    assert run_logs > 0, "the playbooks' INFO run logs should have reached the Prefect server"
    leaks += [f"{what} in the Prefect server's database" for what in canary.secrets_in(stored)]

    # Every file the tests wrote under pytest's temporary folder.
    # Ledger connections the suite dropped are closed first (their -wal files fold into the
    # database then); a -wal or -journal that still vanishes meanwhile is read as its database.
    gc.collect()
    base = tmp_path_factory.getbasetemp()
    files = [p for p in base.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "report.html" for p in files)
    assert any(p.suffix == ".sqlite" for p in files)  # the ledgers
    for path in files:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            stem = path.name.removesuffix("-wal").removesuffix("-journal")
            if stem == path.name or not (path.parent / stem).is_file():
                raise
            path = path.parent / stem
            size = path.stat().st_size
        if size > _BIGGEST_FILE:
            continue
        for what in canary.secrets_in(_file_text(path)):
            leaks.append(f"{what} in {path.relative_to(base)}")

    assert not leaks, "\n".join(sorted(set(leaks)))
