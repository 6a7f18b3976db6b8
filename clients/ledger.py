"""The audit ledger: what each playbook run planned, meant to write, and what came of it.

Append-only. A run is a `runs` row, its end a `run_ends` row; a plan is `decisions` rows; each
write is an `intents` row written before the API call and a `results` row after it. Nothing is
ever updated or deleted (SQLite refuses it with triggers), so a crash between the two leaves an
intent without a result: `interrupted()` finds it.

Plain Python and SQLAlchemy Core, no Prefect. Default a SQLite file under the project's `data/`
folder; any SQLAlchemy URL by argument or `LEDGER_URL` (Postgres needs a sync driver such as
psycopg: `postgresql+psycopg://user@host/db`). Safe to share between threads: one engine,
one short transaction per write.

The tables, the engine and the write transactions are in clients/ledger_db.py (`Ledger` is a
`LedgerDatabase`), the lease in clients/lease.py; the names tests and callers import from here
(`Ledger`, `scrub`, the tables) are re-exported.
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from clients.lease import Lease, lease_settings
from clients.ledger_db import (
    MUTABLE_TABLES,
    LedgerDatabase,
    claims_table,
    decisions_table,
    intents_table,
    leases_table,
    metadata,
    notifications_table,
    results_table,
    run_ends_table,
    runs_table,
    to_json,
    utc,
    value_of,
)
from clients.redact import scrub  # re-exported: ledger rows never hold a share link

__all__ = [
    "DEFAULT_DATA_DIR", "DEFAULT_FILE", "DONE_RESULTS", "MUTABLE_TABLES", "OPEN_RESULTS",
    "AppliedAction", "Intent", "Ledger", "LedgerDatabase", "NotificationRecord",
    "OutcomeRecord", "RunRecord", "claims_table", "decisions_table", "default_url",
    "intents_table", "leases_table", "metadata", "notifications_table", "results_table",
    "run_ends_table", "runs_table", "scrub",
]

# Where the default SQLite file lives: `<project>/data/ledger.sqlite` (git-ignored).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_FILE = "ledger.sqlite"

# Results that mean "the incident is as this project decided, and this project made it so" (what
# a playbook did earlier: the weekly report's automation figures, the auto-ignore recheck). A
# human's change is never among them: `state_changed` is what the write path records for it.
DONE_RESULTS = ("applied", "already_done", "overwrote_human_change")
# Results that leave a decision open for the next run to finish (nothing known to be done).
OPEN_RESULTS = ("failed", "not_claimed")



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


class Ledger(LedgerDatabase):
    """The audit ledger at a SQLAlchemy URL. The engine and schema are made on first use."""

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        engine_options: dict[str, Any] | None = None,
    ):
        super().__init__(url or default_url(), clock=clock, engine_options=engine_options)

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
                parameters=to_json(parameters),
            )
        )
        return run_id

    def end_run(self, run_id: str, state: str, summary: dict[str, Any]) -> None:
        self._write(
            run_ends_table.insert().values(
                run_id=run_id,
                ended_at=self._now(),
                state=value_of(state),
                summary=to_json(summary),
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
                "action": value_of(d.action),
                "arguments": to_json(d.arguments),
                "reason": scrub(str(d.reason)),
                "evidence": scrub(str(d.evidence)),
                "created_at": now,
            }
            for d in decisions
        ]
        if rows:
            self._write(decisions_table.insert(), rows)
        return len(rows)

    def record_result(self, intent_id: int, result: Any, detail: str = "") -> None:
        self._write(
            results_table.insert().values(
                intent_id=int(intent_id),
                result=value_of(result),
                detail=scrub(detail or ""),
                created_at=self._now(),
            )
        )

    def lease(
        self, name: str, *, run_id: str, ttl: float | None = None, wait: float | None = None
    ) -> Any:
        """Take the lease `name` for `run_id` (clients/lease.py), waiting up to `wait` seconds
        (defaults: LEDGER_LEASE_TTL_SECONDS, LEDGER_LEASE_WAIT_SECONDS). Raises `LeaseHeld`."""
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
            query = query.where(i.c.action == value_of(action))
        with self.engine.connect() as connection:
            return [
                AppliedAction(
                    int(row.incident_id),
                    row.action,
                    json.loads(row.arguments),
                    row.decision_id,
                    utc(row.created_at),
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
                   i.c.created_at >= utc(since), run.c.dry_run.is_(False))
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
                    "created_at": utc(row.created_at),
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
                    "created_at": utc(row.created_at),
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
            query = query.where(run.c.started_at >= utc(since))
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
                    started_at=utc(row.started_at),
                    parameters=json.loads(row.parameters),
                    ended_at=utc(e.ended_at) if e else None,
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
            .where(r.c.created_at >= utc(since), r.c.created_at < utc(until))
            .order_by(r.c.created_at, r.c.id)
        )
        with self.engine.connect() as connection:
            return [
                OutcomeRecord(
                    row.playbook, row.action, row.result, int(row.incident_id), utc(row.created_at)
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
                decision_ids=to_json(sorted(set(decision_ids))),
                status=value_of(status),
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
                    utc(row.created_at),
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


def _intent(row: Any) -> Intent:
    return Intent(
        int(row.id),
        row.run_id,
        row.decision_id,
        int(row.incident_id),
        row.action,
        json.loads(row.arguments),
        utc(row.created_at),
    )
