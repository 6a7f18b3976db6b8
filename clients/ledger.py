"""The audit ledger: what each playbook run planned, meant to write, and what came of it.

Append-only. A run is a `runs` row, its end a `run_ends` row; a plan is `decisions` rows; each
write is an `intents` row written before the API call and a `results` row after it. Nothing is
ever updated or deleted (SQLite refuses it with triggers), so a crash between the two leaves an
intent without a result: `interrupted()` finds it.

Plain Python and SQLAlchemy Core, no Prefect. Default a SQLite file under the project's `data/`
folder; any SQLAlchemy URL by argument or `LEDGER_URL` (Postgres needs a sync driver such as
psycopg: `postgresql+psycopg://user@host/db`). Safe to share between threads: one engine,
one short transaction per write.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from clients.redact import scrub  # re-exported: ledger rows never hold a share link

# Where the default SQLite file lives: `<project>/data/ledger.sqlite` (git-ignored).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_FILE = "ledger.sqlite"

# Results that mean "the incident is as this project decided, and this project made it so" (what
# a playbook did earlier: the weekly report's automation figures, the auto-ignore recheck). A
# human's change is never among them: `state_changed` is what the write path records for it.
DONE_RESULTS = ("applied", "already_done", "overwrote_human_change")
# Results that leave a decision open for the next run to finish (nothing known to be done).
OPEN_RESULTS = ("failed", "not_claimed")

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


@dataclass(frozen=True)
class NotificationRecord:
    run_id: str
    recipient: str
    block: str
    decision_ids: tuple[str, ...]
    status: str
    detail: str
    at: datetime

@dataclass(frozen=True)
class RunRecord:
    id: str
    playbook: str
    flow_run_id: str | None
    dry_run: bool
    started_at: datetime
    parameters: dict[str, Any]
    ended_at: datetime | None = None  # None: still running, or crashed
    state: str | None = None
    summary: dict[str, Any] | None = None


@dataclass(frozen=True)
class Intent:
    id: int
    run_id: str
    decision_id: str
    incident_id: int
    action: str
    arguments: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class AppliedAction:
    incident_id: int
    action: str
    arguments: dict[str, Any]
    decision_id: str
    at: datetime  # when the result was recorded


@dataclass(frozen=True)
class OutcomeRecord:
    playbook: str
    action: str
    result: str
    incident_id: int
    at: datetime


def default_url() -> str:
    """`LEDGER_URL` when set, else the SQLite file under the project's data folder."""
    return os.environ.get("LEDGER_URL") or f"sqlite:///{DEFAULT_DATA_DIR / DEFAULT_FILE}"


class Ledger:
    """The audit ledger at a SQLAlchemy URL. The engine and schema are made on first use."""

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        engine_options: dict[str, Any] | None = None,
    ):
        self.url: URL = make_url(url or default_url())  # a malformed URL fails here, clearly
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
        return _utc(self._clock())

    # -- writes ------------------------------------------------------------------------------------

    def start_run(
        self,
        playbook: str,
        *,
        dry_run: bool,
        parameters: dict[str, Any],
        flow_run_id: str | None = None,
    ) -> str:
        run_id = str(uuid.uuid4())
        self._write(
            runs_table.insert().values(
                id=run_id,
                playbook=playbook,
                flow_run_id=flow_run_id,
                dry_run=bool(dry_run),
                started_at=self._now(),
                parameters=_json(parameters),
            )
        )
        return run_id

    def end_run(self, run_id: str, state: str, summary: dict[str, Any]) -> None:
        self._write(
            run_ends_table.insert().values(
                run_id=run_id,
                ended_at=self._now(),
                state=_value(state),
                summary=_json(summary),
            )
        )

    def record_plan(self, run_id: str, decisions: Iterable[Any]) -> int:
        """All of a plan's decisions in one bulk insert. Returns how many were recorded."""
        now = self._now()
        rows = [
            {
                "run_id": run_id,
                "decision_id": d.decision_id,
                "incident_id": int(d.incident_id),
                "action": _value(d.action),
                "arguments": _json(d.arguments),
                "reason": scrub(str(d.reason)),
                "evidence": scrub(str(d.evidence)),
                "created_at": now,
            }
            for d in decisions
        ]
        if rows:
            self._write(decisions_table.insert(), rows)
        return len(rows)

    def record_intent(self, run_id: str, decision: Any) -> int:
        """Written before the API call: the id to give `record_result` after it."""
        result = self._write(self.intent_statement(run_id, decision))
        return int(result.inserted_primary_key[0])

    def intent_statement(self, run_id: str, decision: Any) -> Any:
        return intents_table.insert().values(
            run_id=run_id,
            decision_id=decision.decision_id,
            incident_id=int(decision.incident_id),
            action=_value(decision.action),
            arguments=_json(decision.arguments),
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

    def record_result(self, intent_id: int, result: Any, detail: str = "") -> None:
        self._write(
            results_table.insert().values(
                intent_id=int(intent_id),
                result=_value(result),
                detail=scrub(detail or ""),
                created_at=self._now(),
            )
        )

    def lease(
        self, name: str, *, run_id: str, ttl: float | None = None, wait: float | None = None
    ) -> Any:
        """Take the lease `name` for `run_id` (clients/lease.py), waiting up to `wait` seconds
        (defaults: LEDGER_LEASE_TTL_SECONDS, LEDGER_LEASE_WAIT_SECONDS). Raises `LeaseHeld`."""
        from clients.lease import Lease, lease_settings

        default_ttl, default_wait = lease_settings()
        lease = Lease(self, name, run_id=run_id, ttl=ttl or default_ttl)
        return lease.acquire(wait=default_wait if wait is None else wait)

    # -- reads -------------------------------------------------------------------------------------

    def applied(self, playbook: str, action: Any = None) -> list[AppliedAction]:
        """What this playbook's real runs made true (applied or already_done), oldest first."""
        r, i, run = results_table, intents_table, runs_table
        query = (
            sa.select(i.c.incident_id, i.c.action, i.c.arguments, i.c.decision_id, r.c.created_at)
            .select_from(r.join(i, r.c.intent_id == i.c.id).join(run, i.c.run_id == run.c.id))
            .where(
                run.c.playbook == playbook, run.c.dry_run.is_(False), r.c.result.in_(DONE_RESULTS)
            )
            .order_by(r.c.created_at, r.c.id)
        )
        if action is not None:
            query = query.where(i.c.action == _value(action))
        with self.engine.connect() as connection:
            return [
                AppliedAction(
                    int(row.incident_id),
                    row.action,
                    json.loads(row.arguments),
                    row.decision_id,
                    _utc(row.created_at),
                )
                for row in connection.execute(query)
            ]

    def assignments_since(self, incident_id: int, since: datetime) -> set[str]:
        """The e-mails real runs of any playbook set out to assign `incident_id` to (intents
        recorded at or after `since`, whatever their result): the webhook receiver tells the
        assignments this project wrote from anyone else's with it."""
        i, run = intents_table, runs_table
        query = (
            sa.select(i.c.arguments)
            .select_from(i.join(run, i.c.run_id == run.c.id))
            .where(i.c.incident_id == int(incident_id), i.c.action == "assign",
                   i.c.created_at >= _utc(since), run.c.dry_run.is_(False))
        )
        with self.engine.connect() as connection:
            found = (json.loads(row.arguments) for row in connection.execute(query))
            return {a["email"] for a in found if isinstance(a, dict) and a.get("email")}

    def interrupted(self, run_id: str | None = None) -> list[Intent]:
        """Intents without a result: the process stopped between the intent and the answer."""
        i, r = intents_table, results_table
        query = (
            sa.select(i)
            .select_from(i.outerjoin(r, r.c.intent_id == i.c.id))
            .where(r.c.id.is_(None))
            .order_by(i.c.id)
        )
        if run_id is not None:
            query = query.where(i.c.run_id == run_id)
        with self.engine.connect() as connection:
            return [_intent(row) for row in connection.execute(query)]

    def unfinished(self, playbook: str) -> list[dict[str, Any]]:
        """Decisions of this playbook's real runs never carried to an end: every intent of the
        decision failed or has no result (the process died), and none was applied, already done,
        or found changed since. Rows as `decisions()` gives them, the latest of each, oldest first.

        A write can land while its note fails, or the process can die between the two; the next
        run no longer plans that incident (it already is as decided), so it finishes these.
        """
        i, r, run = intents_table, results_table, runs_table
        query = (
            sa.select(i.c.decision_id, r.c.result)
            .select_from(i.join(run, i.c.run_id == run.c.id).outerjoin(r, r.c.intent_id == i.c.id))
            .where(run.c.playbook == playbook, run.c.dry_run.is_(False))
        )
        open_ids: set[str] = set()
        closed: set[str] = set()
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                if row.result is None or row.result in OPEN_RESULTS:
                    open_ids.add(row.decision_id)
                else:
                    closed.add(row.decision_id)
            wanted = open_ids - closed
            if not wanted:
                return []
            d = decisions_table
            rows = connection.execute(
                sa.select(d)
                .select_from(d.join(run, d.c.run_id == run.c.id))
                .where(
                    run.c.playbook == playbook,
                    run.c.dry_run.is_(False),
                    d.c.decision_id.in_(sorted(wanted)),
                )
                .order_by(d.c.id)
            )
            latest = {
                row.decision_id: {
                    **row._asdict(),
                    "arguments": json.loads(row.arguments),
                    "created_at": _utc(row.created_at),
                }
                for row in rows
            }
        return list(latest.values())

    def intents(self, run_id: str) -> list[Intent]:
        with self.engine.connect() as connection:
            query = sa.select(intents_table).where(intents_table.c.run_id == run_id)
            return [_intent(row) for row in connection.execute(query.order_by(intents_table.c.id))]

    def decisions(self, run_id: str) -> list[dict[str, Any]]:
        """A run's recorded plan, as rows (decision_id, incident_id, action, arguments, ...)."""
        d = decisions_table
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(d).where(d.c.run_id == run_id).order_by(d.c.id))
            return [
                {
                    **row._asdict(),
                    "arguments": json.loads(row.arguments),
                    "created_at": _utc(row.created_at),
                }
                for row in rows
            ]

    def runs(
        self,
        playbook: str | None = None,
        since: datetime | None = None,
        flow_run_id: str | None = None,
    ) -> list[RunRecord]:
        """Runs, oldest first, each with its last recorded end (None while running or crashed).
        A run suspended for approval ends `awaiting_approval`, then `approved` or `declined`
        (with the approver's reason) once answered."""
        run, end = runs_table, run_ends_table
        query = sa.select(run).order_by(run.c.started_at, run.c.id)
        if playbook is not None:
            query = query.where(run.c.playbook == playbook)
        if flow_run_id is not None:
            query = query.where(run.c.flow_run_id == str(flow_run_id))
        if since is not None:
            query = query.where(run.c.started_at >= _utc(since))
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
            ends: dict[str, Any] = {}
            ids = [row.id for row in rows]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for e in connection.execute(
                    sa.select(end).where(end.c.run_id.in_(chunk)).order_by(end.c.id)
                ):
                    ends[e.run_id] = e  # the later row wins
        records = []
        for row in rows:
            e = ends.get(row.id)
            records.append(
                RunRecord(
                    id=row.id,
                    playbook=row.playbook,
                    flow_run_id=row.flow_run_id,
                    dry_run=bool(row.dry_run),
                    started_at=_utc(row.started_at),
                    parameters=json.loads(row.parameters),
                    ended_at=_utc(e.ended_at) if e else None,
                    state=e.state if e else None,
                    summary=json.loads(e.summary) if e else None,
                )
            )
        return records

    def outcomes(self, since: datetime, until: datetime) -> list[OutcomeRecord]:
        """Results recorded in [since, until), for the weekly report."""
        r, i, run = results_table, intents_table, runs_table
        query = (
            sa.select(run.c.playbook, i.c.action, r.c.result, i.c.incident_id, r.c.created_at)
            .select_from(r.join(i, r.c.intent_id == i.c.id).join(run, i.c.run_id == run.c.id))
            .where(r.c.created_at >= _utc(since), r.c.created_at < _utc(until))
            .order_by(r.c.created_at, r.c.id)
        )
        with self.engine.connect() as connection:
            return [
                OutcomeRecord(
                    row.playbook, row.action, row.result, int(row.incident_id), _utc(row.created_at)
                )
                for row in connection.execute(query)
            ]

    def record_notification(
        self,
        run_id: str,
        playbook: str,
        *,
        recipient: str,
        block: str,
        decision_ids: Iterable[str],
        status: str,
        detail: str = "",
    ) -> None:
        """One message attempt (see `notifications_table`)."""
        self._write(
            notifications_table.insert().values(
                run_id=run_id,
                playbook=playbook,
                recipient=scrub(recipient)[:320],
                block=scrub(block)[:300],
                decision_ids=_json(sorted(set(decision_ids))),
                status=_value(status),
                detail=scrub(detail or "")[:1000],
                created_at=self._now(),
            )
        )

    def notifications(self, playbook: str) -> list[NotificationRecord]:
        """Every message attempt of this playbook, oldest first."""
        n = notifications_table
        query = sa.select(n).where(n.c.playbook == playbook).order_by(n.c.created_at, n.c.id)
        with self.engine.connect() as connection:
            return [
                NotificationRecord(
                    row.run_id,
                    row.recipient,
                    row.block,
                    tuple(json.loads(row.decision_ids)),
                    row.status,
                    row.detail,
                    _utc(row.created_at),
                )
                for row in connection.execute(query)
            ]

    def delivered(self, playbook: str) -> set[tuple[str, str, str]]:
        """(decision id, recipient, block) of every item a message carried successfully."""
        return {
            (decision_id, record.recipient, record.block)
            for record in self.notifications(playbook)
            if record.status in ("sent", "written")
            for decision_id in record.decision_ids
        }

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


def _intent(row: Any) -> Intent:
    return Intent(
        int(row.id),
        row.run_id,
        row.decision_id,
        int(row.incident_id),
        row.action,
        json.loads(row.arguments),
        _utc(row.created_at),
    )


def _value(item: Any) -> str:
    """An enum's value (Action, Result), or the string itself."""
    return str(getattr(item, "value", item))


def _json(value: Any) -> str:
    return scrub(json.dumps(value, sort_keys=True, default=str))


def _utc(moment: datetime) -> datetime:
    """Aware UTC. SQLite hands datetimes back naive; they were written as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
