"""The audit ledger on real databases: crash trail, filters, threads, settings.

Tests taking `ledger` run twice, on a SQLite file and on a fresh database of the private
PostgreSQL the session starts (`ledger_url`, tests/fixtures/postgres.py): behaviour every backend
must have. Tests taking `sqlite_ledger` are SQLite-only: the append-only triggers and the
pragmas exist only there (on Postgres, append-only is a matter of the role's grants).
"""
from __future__ import annotations

import secrets
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from clients import ledger as ledger_module
from clients.ledger import Ledger, scrub
from tasks.decide.plan import Action, Decision, Result

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand: no sleeping, exact timestamps."""

    def __init__(self, start: datetime = T0):
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        with self._lock:
            self.now += timedelta(**delta)


def decision(
    incident_id: int, action: Action = Action.IGNORE, playbook: str = "auto-ignore", **arguments
) -> Decision:
    return Decision(
        playbook=playbook,
        incident_id=incident_id,
        action=action,
        arguments=arguments or {"reason": "test_credential"},
        reason="test_path",
        evidence=f"incident {incident_id} only in tests/",
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(ledger_url: str, clock: Clock) -> Ledger:
    """On each backend: a new SQLite file, then a new Postgres database."""
    book = Ledger(ledger_url, clock=clock)
    yield book
    book.dispose()


@pytest.fixture
def sqlite_ledger(tmp_path: Path, clock: Clock) -> Ledger:
    """SQLite only: for its triggers and pragmas."""
    book = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}", clock=clock)
    yield book
    book.dispose()


def _count(ledger: Ledger, table: str) -> int:
    with ledger.engine.connect() as connection:
        return connection.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()


# -- the write path's trail --------------------------------------------------------------------


def test_a_run_plan_intent_and_result_are_rows(ledger, clock):
    run_id = ledger.start_run("auto-ignore", dry_run=False, parameters={"max_actions": 5})
    plan = [decision(1), decision(2)]
    assert ledger.record_plan(run_id, plan) == 2
    clock.advance(seconds=1)
    intent_id = ledger.record_intent(run_id, plan[0])
    clock.advance(seconds=1)
    ledger.record_result(intent_id, Result.APPLIED, "")
    ledger.end_run(run_id, "completed", {"counts": {"applied": 1}})

    [run] = ledger.runs()
    assert (run.id, run.playbook, run.dry_run, run.state) == (
        run_id,
        "auto-ignore",
        False,
        "completed",
    )
    assert run.parameters == {"max_actions": 5} and run.summary == {"counts": {"applied": 1}}
    assert run.started_at == T0 and run.ended_at == T0 + timedelta(seconds=2)
    recorded = ledger.decisions(run_id)
    assert [(d["incident_id"], d["decision_id"]) for d in recorded] == [
        (1, plan[0].decision_id),
        (2, plan[1].decision_id),
    ]
    assert recorded[0]["arguments"] == {"reason": "test_credential"}
    assert recorded[0]["evidence"] == "incident 1 only in tests/"
    [intent] = ledger.intents(run_id)
    assert (intent.id, intent.incident_id, intent.action) == (intent_id, 1, "ignore")
    assert ledger.interrupted() == []


def test_results_are_new_rows_and_intents_are_never_updated(ledger, clock):
    run_id = ledger.start_run("auto-ignore", dry_run=False, parameters={})
    intent_id = ledger.record_intent(run_id, decision(7))
    with ledger.engine.connect() as connection:
        before = connection.exec_driver_sql("SELECT * FROM intents").all()
    ledger.record_result(intent_id, "failed", "ServerError 503")
    ledger.record_result(intent_id, "applied", "retried by hand")
    with ledger.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT * FROM intents").all() == before
        results = connection.exec_driver_sql(
            "SELECT intent_id, result, detail FROM results ORDER BY id"
        ).all()
    assert results == [
        (intent_id, "failed", "ServerError 503"),
        (intent_id, "applied", "retried by hand"),
    ]


@pytest.mark.parametrize("table", ["runs", "run_ends", "decisions", "intents", "results"])
def test_the_database_refuses_updates_and_deletes(sqlite_ledger, table):
    ledger = sqlite_ledger  # SQLite only: the triggers are SQLite's
    run_id = ledger.start_run("auto-ignore", dry_run=False, parameters={})
    ledger.record_plan(run_id, [decision(1)])
    ledger.record_result(ledger.record_intent(run_id, decision(1)), "applied")
    ledger.end_run(run_id, "completed", {})
    # Even a plain sqlite3 connection, outside our code, cannot rewrite the trail.
    database = ledger.url.database
    with sqlite3.connect(database) as raw:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(f"DELETE FROM {table}")
        column = "id" if table != "run_ends" else "state"
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(f"UPDATE {table} SET {column} = {column}")
    assert _count(ledger, table) == 1


def test_interrupted_intents_are_the_ones_without_a_result(ledger):
    first = ledger.start_run("departed-developer-reassignment", dry_run=False, parameters={})
    second = ledger.start_run("departed-developer-reassignment", dry_run=False, parameters={})
    done = ledger.record_intent(first, decision(1, Action.ASSIGN, email="a@corp.example"))
    ledger.record_result(done, Result.ALREADY_DONE, "409")
    crashed = ledger.record_intent(first, decision(2, Action.ASSIGN, email="b@corp.example"))
    other = ledger.record_intent(second, decision(3, Action.ASSIGN, email="c@corp.example"))
    assert [i.id for i in ledger.interrupted()] == [crashed, other]
    [only] = ledger.interrupted(first)
    assert (only.id, only.incident_id, only.arguments) == (crashed, 2, {"email": "b@corp.example"})
    # The run that crashed has no end either.
    assert [r.state for r in ledger.runs()] == [None, None]


def test_applied_filters_by_playbook_action_and_result(ledger, clock):
    ignore_run = ledger.start_run("auto-ignore", dry_run=False, parameters={})
    other_run = ledger.start_run("departed-developer-reassignment", dry_run=False, parameters={})
    dry_run = ledger.start_run("auto-ignore", dry_run=True, parameters={})
    expected = []
    for incident_id, result in [
        (1, Result.APPLIED),
        (2, Result.ALREADY_DONE),
        (3, Result.FAILED),
        (4, Result.STATE_CHANGED),
    ]:
        clock.advance(minutes=1)
        d = decision(incident_id)
        ledger.record_result(ledger.record_intent(ignore_run, d), result, "")
        if result in (Result.APPLIED, Result.ALREADY_DONE):
            expected.append((incident_id, "ignore", d.decision_id, clock.now))
    note = decision(5, Action.NOTE, comment="why")
    ledger.record_result(ledger.record_intent(ignore_run, note), Result.APPLIED, "")
    ledger.record_result(
        ledger.record_intent(other_run, decision(6, playbook="x")), Result.APPLIED, ""
    )
    ledger.record_result(ledger.record_intent(dry_run, decision(8)), Result.APPLIED, "")
    ledger.record_intent(ignore_run, decision(9))  # interrupted: not applied

    ignored = ledger.applied("auto-ignore", Action.IGNORE)
    assert [(a.incident_id, a.action, a.decision_id, a.at) for a in ignored] == expected
    assert ignored[0].arguments == {"reason": "test_credential"}
    assert ledger.applied("auto-ignore", "ignore") == ignored
    assert [a.incident_id for a in ledger.applied("auto-ignore")] == [1, 2, 5]
    assert [a.incident_id for a in ledger.applied("departed-developer-reassignment")] == [6]
    assert ledger.applied("nobody") == []


def test_runs_filter_and_last_end_wins(ledger, clock):
    early = ledger.start_run("auto-ignore", dry_run=True, parameters={}, flow_run_id="flow-1")
    clock.advance(days=2)
    late = ledger.start_run("weekly-report", dry_run=False, parameters={"weeks": 1})
    ledger.end_run(late, "failed", {"error": "ConnectionFailed"})
    ledger.end_run(late, "completed", {"rerun": True})
    assert [r.id for r in ledger.runs()] == [early, late]
    assert [r.id for r in ledger.runs(playbook="auto-ignore")] == [early]
    assert [r.id for r in ledger.runs(since=T0 + timedelta(days=1))] == [late]
    assert ledger.runs()[0].flow_run_id == "flow-1" and ledger.runs()[0].dry_run is True
    assert (ledger.runs()[1].state, ledger.runs()[1].summary) == ("completed", {"rerun": True})


def test_outcomes_in_a_window(ledger, clock):
    run_id = ledger.start_run("auto-ignore", dry_run=False, parameters={})
    for incident_id in (1, 2, 3):
        intent_id = ledger.record_intent(run_id, decision(incident_id))
        clock.advance(days=3)
        ledger.record_result(intent_id, Result.APPLIED, "")
    # Results at T0+3d, +6d, +9d; the window [T0+3d, T0+9d) holds the first two.
    rows = ledger.outcomes(T0 + timedelta(days=3), T0 + timedelta(days=9))
    assert [(r.playbook, r.action, r.result, r.incident_id, r.at) for r in rows] == [
        ("auto-ignore", "ignore", "applied", 1, T0 + timedelta(days=3)),
        ("auto-ignore", "ignore", "applied", 2, T0 + timedelta(days=6)),
    ]
    # A window given in another time zone means the same instants.
    paris = timezone(timedelta(hours=2))
    assert (
        len(ledger.outcomes((T0 + timedelta(days=3)).astimezone(paris), T0 + timedelta(days=10)))
        == 3
    )


# -- secrets never stored -------------------------------------------------------------------------


def test_share_links_and_tokens_are_scrubbed(ledger):
    # Made now, as the sandbox makes them: never a realistic-looking link in the repository.
    link = "https://dashboard.gitguardian.com/share/incidents/fake-" + secrets.token_hex(16)
    run_id = ledger.start_run("share", dry_run=False, parameters={"url": f"{link}?x=1"})
    ledger.record_plan(run_id, [Decision("share", 1, Action.SHARE, {}, "r", f"see {link}")])
    intent_id = ledger.record_intent(run_id, decision(1))
    ledger.record_result(
        intent_id, "applied", f"shared at {link} (https://x.example/a?token=test-token-full&b=2)"
    )
    ledger.end_run(run_id, "completed", {"link": link})
    with ledger.engine.connect() as connection:
        everything = " ".join(
            str(row)
            for table in ("runs", "run_ends", "decisions", "intents", "results")
            for row in connection.exec_driver_sql(f"SELECT * FROM {table}")
        )
    assert "/share/" not in everything and "test-token-full" not in everything
    assert "[share link removed]" in everything and "token=[removed]&b=2" in everything


def test_scrub_leaves_ordinary_text_alone():
    text = "409: incident already assigned to ada.lovelace@corp.example (https://api.example/v1/x)"
    assert scrub(text) == text


# -- threads ---------------------------------------------------------------------------------------


def test_concurrent_writes_from_threads(ledger):
    run_id = ledger.start_run("departed-developer-reassignment", dry_run=False, parameters={})
    start = threading.Barrier(8)

    def act(incident_id: int) -> int:
        if incident_id < 8:
            start.wait()  # the first eight all write at the same moment
        intent_id = ledger.record_intent(
            run_id, decision(incident_id, Action.ASSIGN, email="x@corp.example")
        )
        ledger.record_result(intent_id, Result.APPLIED, f"incident {incident_id}")
        return intent_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        intent_ids = list(pool.map(act, range(120)))
    assert len(set(intent_ids)) == 120
    assert _count(ledger, "intents") == 120 and _count(ledger, "results") == 120
    assert ledger.interrupted() == []
    assert sorted(a.incident_id for a in ledger.applied("departed-developer-reassignment")) == list(
        range(120)
    )


def test_sqlite_file_uses_wal(sqlite_ledger):
    ledger = sqlite_ledger
    ledger.start_run("x", dry_run=True, parameters={})
    with ledger.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


@pytest.mark.postgres
def test_two_ledgers_on_one_postgres_database_from_two_threads(postgres_url):
    """Two processes' worth of ledgers (own engines, own pools) on one database, at once: both
    make the schema on first use and write intents and results at the same moment."""
    books = [Ledger(postgres_url), Ledger(postgres_url)]
    start = threading.Barrier(2)
    big = 3_000_000_000  # incident ids past 32 bits: BigInteger columns

    def work(n: int) -> tuple[str, list[int]]:
        book = books[n]
        start.wait()
        run_id = book.start_run(f"playbook-{n}", dry_run=False, parameters={"n": n})
        intent_ids = []
        for k in range(40):
            d = decision(
                big + 1000 * n + k,
                Action.ASSIGN,
                playbook=f"playbook-{n}",
                email=f"owner-{n}@corp.example",
            )
            intent_id = book.record_intent(run_id, d)
            if k % 10 != 9:  # every tenth is left without a result, as after a crash
                book.record_result(intent_id, Result.APPLIED, f"incident {d.incident_id}")
            intent_ids.append(intent_id)
        book.end_run(run_id, "completed", {"n": n})
        return run_id, intent_ids

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            (run_a, ids_a), (run_b, ids_b) = pool.map(work, range(2))
        assert len(set(ids_a) | set(ids_b)) == 80
        for book in books:  # each sees both: one database
            assert [(r.id, r.state) for r in sorted(book.runs(), key=lambda r: r.playbook)] == [
                (run_a, "completed"),
                (run_b, "completed"),
            ]
            for n in range(2):
                applied = [a.incident_id for a in book.applied(f"playbook-{n}")]
                expected = [big + 1000 * n + k for k in range(40) if k % 10 != 9]
                assert sorted(applied) == expected
            crashed = {(i.run_id, i.incident_id) for i in book.interrupted()}
            assert crashed == {
                (run, big + 1000 * n + k)
                for n, run in enumerate((run_a, run_b))
                for k in (9, 19, 29, 39)
            }
        assert _count(books[0], "intents") == 80 and _count(books[0], "results") == 72
    finally:
        for book in books:
            book.dispose()


def test_in_memory_ledger_is_shared_across_threads():
    book = Ledger("sqlite://")
    run_id = book.start_run("x", dry_run=False, parameters={})
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda i: book.record_intent(run_id, decision(i)), range(20)))
    assert len(book.interrupted(run_id)) == 20


# -- settings ----------------------------------------------------------------------------------


def test_default_is_a_sqlite_file_in_the_data_folder_which_is_created(tmp_path, monkeypatch):
    monkeypatch.delenv("LEDGER_URL", raising=False)
    monkeypatch.setattr(ledger_module, "DEFAULT_DATA_DIR", tmp_path / "project" / "data")
    book = Ledger()
    assert book.url.database == str(tmp_path / "project" / "data" / "ledger.sqlite")
    book.start_run("x", dry_run=True, parameters={})
    assert (tmp_path / "project" / "data" / "ledger.sqlite").is_file()
    book.dispose()


def test_the_default_data_folder_is_the_projects():
    assert (
        ledger_module.DEFAULT_DATA_DIR == Path(ledger_module.__file__).resolve().parents[1] / "data"
    )


def test_ledger_url_from_the_environment_relative_to_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEDGER_URL", "sqlite:///nested/dir/audit.db")
    book = Ledger()
    assert not (tmp_path / "nested").exists()  # nothing happens before the first use
    book.start_run("x", dry_run=True, parameters={})
    assert (tmp_path / "nested" / "dir" / "audit.db").is_file()
    book.dispose()


def test_a_postgres_url_is_accepted_without_connecting():
    book = Ledger("postgresql+psycopg://ledger:pw-not-real@db.internal:5432/audit")
    assert book.url.get_backend_name() == "postgresql" and not book.is_sqlite
    assert "pw-not-real" not in repr(book) and "db.internal" in repr(book)


def test_the_schema_compiles_for_postgres():
    statements: list[str] = []
    mock = sa.create_mock_engine(
        "postgresql://",
        lambda sql, *a, **k: statements.append(str(sql.compile(dialect=mock.dialect))),
    )
    ledger_module.metadata.create_all(mock, checkfirst=False)
    created = " ".join(statements)
    for table in ("runs", "run_ends", "decisions", "intents", "results"):
        assert f"CREATE TABLE {table}" in created
    assert "SERIAL" in created and "TIMESTAMP WITH TIME ZONE" in created


def test_a_malformed_url_fails_at_construction():
    with pytest.raises(sa.exc.ArgumentError):
        Ledger("not a url")


def test_processes_reaching_a_new_sqlite_file_at_once_all_get_the_schema(tmp_path):
    """Two runs started together on a fresh machine create the ledger's tables at once."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    code = (
        "import sys, time; from clients.ledger import Ledger; "
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time())); "
        "l = Ledger(sys.argv[2]); l.start_run('pb', dry_run=True, parameters={})"
    )
    start = __import__("time").time() + 2.0
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(start), url],
            cwd=Path(__file__).resolve().parents[2],
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    errors = [child.communicate(timeout=60)[1].decode() for child in children]
    assert [child.returncode for child in children] == [0] * 6, errors
    assert len(Ledger(url).runs("pb")) == 6
