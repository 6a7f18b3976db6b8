"""Exclusion between runs: a lease per playbook and workspace, held in the audit ledger.

Two runs of one playbook on one workspace must never write at the same time, however they
were started (CLI, a worker, `serve`, any deployment): every one of them reaches the ledger, so
the ledger is where they meet. The lease is one row per name, taken and renewed by
compare-and-set on its `epoch`, with an expiry that a heartbeat thread pushes forward:

- free, released, or expired: the next run takes it (epoch + 1);
- held by a process on this host that no longer exists (killed): taken at once, without
  waiting for the expiry;
- held and alive: the run waits (polling, up to `wait` seconds), then gives up with
  `LeaseHeld`, which names the holder and since when; nothing has been written.

Each decision is then claimed under the epoch before its first write (`Lease.claim`): the
claim's insert only succeeds while this epoch's lease is held and unexpired, and only once per
epoch, so a run that lost its lease (paused past its expiry, cut off from the database) cannot
write a decision another run is now in charge of.

Plain Python and SQLAlchemy Core, no Prefect. Works on SQLite (one machine: the file is
shared by its processes) and on Postgres (every worker on every host shares one URL).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

# The ledger's database, not `Ledger`: clients/ledger.py builds leases on this module.
from clients.ledger_db import LedgerDatabase, claims_table, intents_table, leases_table, utc

logger = logging.getLogger(__name__)

DEFAULT_TTL = 60.0  # seconds a lease lives without a heartbeat
DEFAULT_WAIT = 300.0  # seconds a run waits for a held lease before giving up
_FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)


class LeaseHeld(RuntimeError):
    """Another live run holds the lease: this run wrote nothing."""

    def __init__(self, name: str, holder: LeaseInfo, waited: float):
        self.name, self.holder, self.waited = name, holder, waited
        super().__init__(
            f"another run of {name} holds the lease since {holder.since} "
            f"(run {holder.run_id}, host {holder.host}, pid {holder.pid}); waited "
            f"{waited:.0f} s, nothing written"
        )


@dataclass(frozen=True)
class LeaseInfo:
    run_id: str | None
    host: str | None
    pid: int | None
    since: str  # ISO time the holder took it
    expires_at: datetime


@dataclass(frozen=True)
class Claim:
    ok: bool  # this run may write the decision
    earlier: bool  # an attempt at this decision was recorded before (look for its note first)
    why: str = ""  # when not ok


def lease_settings() -> tuple[float, float]:
    """(ttl, wait) from LEDGER_LEASE_TTL_SECONDS and LEDGER_LEASE_WAIT_SECONDS."""
    def number(name: str, default: float) -> float:
        text = os.environ.get(name, "").strip()
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{name} must be a number of seconds, got {text!r}") from None
        if value < 0:
            raise ValueError(f"{name} must be 0 or more, got {text!r}")
        return value

    return number("LEDGER_LEASE_TTL_SECONDS", DEFAULT_TTL), number("LEDGER_LEASE_WAIT_SECONDS",
                                                                    DEFAULT_WAIT)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class Lease:
    """A held lease. Use `Ledger.lease(...)` (a context manager) or `acquire()` / `release()`."""

    def __init__(self, ledger: LedgerDatabase, name: str, *, run_id: str, ttl: float = DEFAULT_TTL):
        if ttl <= 0:
            raise ValueError("a lease's ttl must be more than 0 seconds")
        self.ledger, self.name, self.run_id, self.ttl = ledger, name, run_id, float(ttl)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.holder = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:12]}"
        self.epoch: int | None = None
        self.waited = 0.0
        self._expires_mono = 0.0  # local monotonic deadline: no write after it
        self._lost = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, epoch={self.epoch}, holder={self.holder!r})"

    # -- taking and giving back ------------------------------------------------------------------

    def acquire(self, *, wait: float = DEFAULT_WAIT, poll: float = 0.5) -> Lease:
        started = time.monotonic()
        self._ensure_row()
        while True:
            row = self._read()
            now = self.ledger._now()
            takeable = (
                row.holder is None
                or utc(row.expires_at) <= now
                or (row.host == self.host and not _alive(row.pid))
            )
            if takeable and self._take(row.epoch, now):
                self.waited = time.monotonic() - started
                self._start_heartbeat()
                if self.waited >= 1:
                    logger.info("lease %s taken after waiting %.0f s", self.name, self.waited)
                return self
            if not takeable and time.monotonic() - started >= wait:
                raise LeaseHeld(self.name, _info(row), time.monotonic() - started)
            time.sleep(poll if takeable is False else 0.01)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        if self.epoch is None:
            return
        t = leases_table
        try:
            self.ledger._write(
                t.update()
                .where(t.c.name == self.name, t.c.epoch == self.epoch, t.c.holder == self.holder)
                .values(holder=None, expires_at=self.ledger._now())
            )
        except Exception as exc:  # noqa: BLE001 - an unreleased lease expires by itself
            logger.warning("lease %s not released (%s): it expires in %.0f s",
                           self.name, type(exc).__name__, self.ttl)
        self._lost = True

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.release()

    # -- while held -------------------------------------------------------------------------------

    def valid(self, margin: float | None = None) -> bool:
        """Still ours, with at least `margin` seconds (default: a tenth of the ttl) to run."""
        margin = self.ttl / 10 if margin is None else margin
        return not self._lost and time.monotonic() + margin < self._expires_mono

    def claim(self, decision_id: str) -> Claim:
        """Claim a decision under this epoch, fenced by the lease (see the module's text)."""
        if not self.valid():
            return Claim(False, False, f"this run's lease on {self.name} is lost or expiring")
        try:
            rows = self.ledger._write_returning(self._fenced_claim(decision_id))
        except IntegrityError:
            return Claim(False, False, "already claimed in this run's lease")
        if len(rows) != 1:
            self._lost = True
            return Claim(False, False, f"this run no longer holds the lease on {self.name}")
        return Claim(True, self._earlier(decision_id))

    def begin(self, decision: Any) -> tuple[Claim, int]:
        """Claim `decision` and record its intent in one transaction: (the claim, intent id).

        The intent is recorded either way (a refused claim gets its result too), so the trail
        shows every attempt. Same rules as `claim`.
        """
        if not self.valid():
            claim = Claim(False, False, f"this run's lease on {self.name} is lost or expiring")
            return claim, self.ledger.record_intent(self.run_id, decision)
        c, i = claims_table, intents_table
        decision_id = decision.decision_id
        try:
            with self.ledger.transaction() as connection:
                earlier = connection.execute(
                    sa.select(i.c.id).where(i.c.decision_id == decision_id).limit(1)
                ).first() is not None
                again = connection.execute(
                    sa.select(c.c.id).where(c.c.decision_id == decision_id,
                                            c.c.lease_name == self.name,
                                            c.c.epoch == self.epoch).limit(1)
                ).first() is not None
                inserted = [] if again else list(
                    connection.execute(self._fenced_claim(decision_id)))
                intent = connection.execute(self.ledger.intent_statement(self.run_id, decision))
                intent_id = int(intent.inserted_primary_key[0])
        except IntegrityError:  # another thread of this run claimed it at the same moment
            claim = Claim(False, False, "already claimed in this run's lease")
            return claim, self.ledger.record_intent(self.run_id, decision)
        if again:
            return Claim(False, False, "already claimed in this run's lease"), intent_id
        if len(inserted) != 1:
            self._lost = True
            return Claim(False, False, f"this run no longer holds the lease on {self.name}"), \
                intent_id
        return Claim(True, earlier), intent_id

    # -- internals --------------------------------------------------------------------------------

    def _fenced_claim(self, decision_id: str) -> Any:
        """INSERT the claim only while this epoch's lease is held and unexpired (RETURNING id:
        no row back means the lease is no longer ours)."""
        lt, c = leases_table, claims_table
        now = self.ledger._now()
        fenced = (
            sa.select(sa.literal(decision_id), sa.literal(self.name), sa.literal(self.epoch),
                      sa.literal(self.run_id), sa.literal(now, sa.DateTime(timezone=True)))
            .where(sa.exists().where(lt.c.name == self.name, lt.c.epoch == self.epoch,
                                     lt.c.holder == self.holder, lt.c.expires_at > now))
        )
        return c.insert().from_select(
            ["decision_id", "lease_name", "epoch", "run_id", "created_at"], fenced
        ).returning(c.c.id)

    def _earlier(self, decision_id: str) -> bool:
        i = intents_table
        # Called before this attempt records its intent: any intent found is an earlier attempt.
        query = sa.select(i.c.id).where(i.c.decision_id == decision_id).limit(1)
        with self.ledger.engine.connect() as connection:
            return connection.execute(query).first() is not None

    def _ensure_row(self) -> None:
        try:
            self.ledger._write(leases_table.insert().values(
                name=self.name, epoch=0, holder=None, expires_at=_FAR_PAST))
        except IntegrityError:
            pass  # the row exists: the usual case

    def _read(self) -> Any:
        t = leases_table
        with self.ledger.engine.connect() as connection:
            return connection.execute(sa.select(t).where(t.c.name == self.name)).one()

    def _take(self, seen_epoch: int, now: datetime) -> bool:
        t = leases_table
        result = self.ledger._write(
            t.update()
            .where(t.c.name == self.name, t.c.epoch == seen_epoch)
            .values(epoch=seen_epoch + 1, holder=self.holder, run_id=self.run_id, host=self.host,
                    pid=self.pid, acquired_at=now, expires_at=now + timedelta(seconds=self.ttl))
        )
        if result.rowcount != 1:
            return False  # another run took it between our read and our write
        self.epoch = seen_epoch + 1
        self._lost = False
        self._expires_mono = time.monotonic() + self.ttl
        return True

    def renew(self) -> bool:
        t = leases_table
        started = time.monotonic()
        now = self.ledger._now()
        result = self.ledger._write(
            t.update()
            .where(t.c.name == self.name, t.c.epoch == self.epoch, t.c.holder == self.holder)
            .values(expires_at=now + timedelta(seconds=self.ttl))
        )
        if result.rowcount != 1:
            self._lost = True
            logger.error("lease %s lost: another run took it; this run stops writing", self.name)
            return False
        self._expires_mono = started + self.ttl
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.ttl / 3):
                try:
                    if not self.renew():
                        return
                except Exception as exc:  # noqa: BLE001 - retried; the local deadline guards
                    logger.warning("lease %s not renewed (%s)", self.name, type(exc).__name__)

        self._beat = threading.Thread(target=beat, name=f"lease-{self.name}", daemon=True)
        self._beat.start()


def _info(row: Any) -> LeaseInfo:
    since = utc(row.acquired_at).isoformat(timespec="seconds") if row.acquired_at else "?"
    return LeaseInfo(row.run_id, row.host, row.pid, since, utc(row.expires_at))
