"""The audit ledger's database (clients/ledger.py): its tables, its engine, and one write at a
time.

`LedgerDatabase` makes the engine and the schema on first use (SQLite: WAL, a busy timeout,
append-only triggers; Postgres: the schema made under an advisory lock) and writes in short
transactions (`_write`, `_write_returning`, `transaction`), SQLite's under this process's write
lock. The intent row is written here too: a lease's claim and its decision's intent share one
transaction (clients/lease.py). `Ledger` (clients/ledger.py) adds the records and the queries;
the lease builds on this module alone, so neither imports the other in a circle.

Plain Python and SQLAlchemy Core, no Prefect.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from clients.redact import scrub

metadata = sa.MetaData()

runs_table = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("playbook", sa.String(200), nullable=False, index=True),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("parameters", sa.Text, nullable=False),
)
run_ends_table = sa.Table(
    "run_ends", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
)
decisions_table = sa.Table(
    "decisions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("decision_id", sa.String(64), nullable=False),
    sa.Column("incident_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("arguments", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
intents_table = sa.Table(
    "intents", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("decision_id", sa.String(64), nullable=False),
    sa.Column("incident_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("arguments", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
results_table = sa.Table(
    "results", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("intent_id", sa.Integer, sa.ForeignKey("intents.id"), nullable=False, index=True),
    sa.Column("result", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

# Coordination, not audit: the one row per lease name is updated in place (compare-and-set on
# its epoch), so it is the one table the append-only triggers leave alone.
leases_table = sa.Table(
    "leases", metadata,
    sa.Column("name", sa.String(400), primary_key=True),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("holder", sa.String(200)),
    sa.Column("run_id", sa.String(36)),
    sa.Column("host", sa.String(255)),
    sa.Column("pid", sa.Integer),
    sa.Column("acquired_at", sa.DateTime(timezone=True)),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
# A decision claimed under a lease's epoch, before its first write. Unique per epoch, and only
# insertable while that epoch's lease is held and unexpired (the insert is fenced by the lease).
claims_table = sa.Table(
    "claims", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.String(64), nullable=False, index=True),
    sa.Column("lease_name", sa.String(400), nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("decision_id", "lease_name", "epoch", name="claims_once_per_epoch"),
)
# Notifications (the SLA ladder's digests): one row per message attempt, whatever came of it:
# `sent` (the block accepted it), `failed` (its detail says why, never the block's URL or
# password; the items are sent again by the next run) or `written` (a file in the outbox).
notifications_table = sa.Table(
    "notifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("playbook", sa.String(200), nullable=False, index=True),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("block", sa.String(300), nullable=False),
    sa.Column("decision_ids", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
MUTABLE_TABLES = ("leases",)


class LedgerDatabase:
    """The ledger's engine and schema at a SQLAlchemy URL, made on first use; its writes."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
        engine_options: dict[str, Any] | None = None,
    ):
        self.url: URL = make_url(url)  # a malformed URL fails here, clearly
        self._clock = clock or (lambda: datetime.now(UTC))
        self._engine_options = dict(engine_options or {})
        self._engine: Engine | None = None
        self._setup_lock = threading.Lock()
        # SQLite allows one writer at a time: writers in this process queue here rather than
        # bounce off "database is locked".
        self._write_lock = threading.Lock() if self.is_sqlite else None

    def __repr__(self) -> str:
        return f"Ledger({self.url.render_as_string(hide_password=True)!r})"

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._setup_lock:
                if self._engine is None:
                    engine = self._make_engine()
                    _create_schema(engine)
                    if self.is_sqlite:
                        _append_only_triggers(engine)
                    self._engine = engine
        return self._engine

    def _make_engine(self) -> Engine:
        options = dict(self._engine_options)
        if not self.is_sqlite:
            try:
                return sa.create_engine(self.url, pool_pre_ping=True, **options)
            except ModuleNotFoundError as exc:
                raise RuntimeError(
                    f"The ledger URL needs the database driver {exc.name!r}, not installed here "
                    "(for Postgres: pip install psycopg, URL postgresql+psycopg://...)."
                ) from None
        database = self.url.database or ""
        in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
        if not in_memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        options.setdefault("connect_args", {})["check_same_thread"] = False
        if in_memory:
            options["poolclass"] = StaticPool  # one shared connection, or each sees its own db
        engine = sa.create_engine(self.url, **options)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # noqa: ANN001 - DBAPI objects
            cursor = dbapi_connection.cursor()
            # First: other processes wait rather than fail (switching to WAL takes a lock too).
            cursor.execute("PRAGMA busy_timeout=10000")
            if not in_memory:
                _wal(cursor)  # readers never block the writer
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine

    def _write(self, statement: Any, rows: Any = None) -> sa.CursorResult:
        engine = self.engine
        if self._write_lock is None:
            with engine.begin() as connection:
                if rows is None:
                    return connection.execute(statement)
                return connection.execute(statement, rows)
        with self._write_lock, engine.begin() as connection:
            return (
                connection.execute(statement, rows)
                if rows is not None
                else connection.execute(statement)
            )

    def _write_returning(self, statement: Any) -> list[Any]:
        """A write with RETURNING, its rows fetched inside the transaction (an INSERT ... SELECT's
        rowcount is not reliable across drivers)."""
        engine = self.engine
        lock = self._write_lock or contextlib.nullcontext()
        with lock, engine.begin() as connection:
            return list(connection.execute(statement))

    def _now(self) -> datetime:
        return utc(self._clock())

    # -- the intent: written alone, or in the lease's claim transaction ----------------------

    def record_intent(self, run_id: str, decision: Any) -> int:
        """Written before the API call: the id to give `record_result` after it."""
        result = self._write(self.intent_statement(run_id, decision))
        return int(result.inserted_primary_key[0])

    def intent_statement(self, run_id: str, decision: Any) -> Any:
        return intents_table.insert().values(
            run_id=run_id,
            decision_id=decision.decision_id,
            incident_id=int(decision.incident_id),
            action=value_of(decision.action),
            arguments=to_json(decision.arguments),
            created_at=self._now(),
        )

    def transaction(self) -> Any:
        """One write transaction (SQLite: under this process's write lock)."""
        lock = self._write_lock or contextlib.nullcontext()

        @contextlib.contextmanager
        def held():
            with lock, self.engine.begin() as connection:
                yield connection

        return held()
    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


# Postgres advisory lock key held while the schema is made ("ggledger" in ASCII).
_SCHEMA_LOCK_KEY = 0x6767_6C65_6467_6572


def _wal(cursor: Any) -> None:
    """WAL mode, once per file (it persists). Switching needs the file to itself and SQLite does
    not wait for that (no busy handler): a process meeting another's transaction retries."""
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


def _create_schema(engine: Engine) -> None:
    """The tables, if missing. Many ledgers (threads, workers) may reach a new Postgres database
    at once: there, they make it one at a time under a transaction-scoped advisory lock, each
    seeing what the one before made (else two CREATE TABLEs race and one fails)."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            metadata.create_all(connection)
        return
    # SQLite: processes reaching a new file at once (two runs started together) race their
    # CREATE TABLEs; the loser finds the table made and looks again (found by the concurrent
    # runs test, tests/stress/test_concurrent_runs.py).
    for attempt in range(10):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.OperationalError as exc:
            if "already exists" not in str(exc) or attempt == 9:
                raise
            time.sleep(0.05 * (attempt + 1))


def _append_only_triggers(engine: Engine) -> None:
    """SQLite refuses UPDATE and DELETE on every ledger table: the trail cannot be rewritten."""
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            if table.name in MUTABLE_TABLES:
                continue
            for verb in ("UPDATE", "DELETE"):
                connection.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS {table.name}_no_{verb.lower()} "
                    f"BEFORE {verb} ON {table.name} "
                    "BEGIN SELECT RAISE(ABORT, 'the audit ledger is append-only'); END"
                )


def value_of(item: Any) -> str:
    """An enum's value (Action, Result), or the string itself."""
    return str(getattr(item, "value", item))


def to_json(value: Any) -> str:
    return scrub(json.dumps(value, sort_keys=True, default=str))


def utc(moment: datetime) -> datetime:
    """Aware UTC. SQLite hands datetimes back naive; they were written as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
