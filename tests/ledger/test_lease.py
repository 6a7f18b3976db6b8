"""The lease and the claims (clients/lease.py) on SQLite and on a real PostgreSQL server: one
holder at a time, across processes; expiry, release and a killed holder; claims fenced by the
lease and unique per epoch."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients.lease import Lease, LeaseHeld
from clients.ledger import Ledger, leases_table


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    ledger = Ledger(ledger_url)
    yield ledger
    ledger.dispose()


def test_one_holder_then_the_next_after_release(ledger):
    first = ledger.lease("pb@ws", run_id="run-a", ttl=30)
    with pytest.raises(LeaseHeld) as held:
        ledger.lease("pb@ws", run_id="run-b", ttl=30, wait=0)
    text = str(held.value)
    assert "another run of pb@ws holds the lease since" in text
    assert "run run-a" in text and "nothing written" in text
    other = ledger.lease("other@ws", run_id="run-c", ttl=30, wait=0)  # another name: free
    first.release()
    second = ledger.lease("pb@ws", run_id="run-b", ttl=30, wait=0)
    assert second.epoch == first.epoch + 1
    second.release()
    other.release()


def test_a_waiting_run_gets_the_lease_when_the_holder_releases_it(ledger):
    import threading

    first = ledger.lease("pb@ws", run_id="run-a", ttl=30)
    threading.Timer(0.5, first.release).start()
    started = time.monotonic()
    second = ledger.lease("pb@ws", run_id="run-b", ttl=30, wait=10)
    assert 0.4 < time.monotonic() - started < 5
    assert second.waited >= 0.4
    second.release()


def test_an_expired_lease_is_taken_over_and_the_stale_holder_is_fenced(ledger):
    stale = ledger.lease("pb@ws", run_id="run-a", ttl=0.6)
    stale._stop.set()  # the holder stalls: no more heartbeats
    stale._beat.join()
    assert stale.claim("d1").ok
    time.sleep(0.8)
    fresh = ledger.lease("pb@ws", run_id="run-b", ttl=30, wait=0)
    assert not stale.valid()
    stale._expires_mono = time.monotonic() + 30  # even if its local clock still believed it...
    refused = stale.claim("d2")
    assert not refused.ok and "no longer holds" in refused.why  # ...the ledger fences it
    assert not stale.renew()
    assert fresh.claim("d2").ok
    fresh.release()


def test_the_heartbeat_keeps_a_lease_past_its_ttl(ledger):
    lease = ledger.lease("pb@ws", run_id="run-a", ttl=0.6)
    time.sleep(1.5)
    assert lease.valid(margin=0)
    with pytest.raises(LeaseHeld):
        ledger.lease("pb@ws", run_id="run-b", ttl=0.6, wait=0)
    lease.release()


def test_a_killed_holder_on_this_host_is_taken_over_at_once(ledger):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lease = Lease(ledger, "pb@ws", run_id="run-dead", ttl=3600)
    lease.pid = dead.pid  # as if that process had taken it and been killed
    lease.acquire(wait=0)
    lease._stop.set()
    started = time.monotonic()
    taken = ledger.lease("pb@ws", run_id="run-b", ttl=30, wait=0)  # no waiting for the hour
    assert time.monotonic() - started < 5 and taken.epoch == lease.epoch + 1
    taken.release()


def test_claims_are_once_per_epoch_and_say_whether_an_attempt_came_before(ledger):
    from tasks.decide.plan import Action, Decision

    decision = Decision("pb", 1, Action.NOTE, {}, "r", "e")
    run = ledger.start_run("pb", dry_run=False, parameters={})
    with ledger.lease("pb@ws", run_id=run, ttl=30) as lease:
        claim = lease.claim(decision.decision_id)
        assert claim.ok and not claim.earlier
        ledger.record_intent(run, decision)
        again = lease.claim(decision.decision_id)
        assert not again.ok and "already claimed" in again.why
    with ledger.lease("pb@ws", run_id=run, ttl=30) as later:
        claim = later.claim(decision.decision_id)
        assert claim.ok and claim.earlier  # a new epoch may claim it; the note is looked for


def test_leases_are_left_out_of_the_append_only_triggers(tmp_path):
    """The audit tables refuse UPDATE on SQLite; the lease row is coordination state."""
    import sqlalchemy as sa

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.sqlite'}")
    ledger.lease("pb@ws", run_id="r", ttl=30).release()
    with ledger.engine.begin() as connection:
        rows = connection.execute(sa.select(leases_table)).all()
    assert len(rows) == 1 and rows[0].holder is None


def _hammer(url: str, log: str, rounds: int) -> None:
    ledger = Ledger(url)
    for _ in range(rounds):
        lease = ledger.lease("pb@ws", run_id=f"p{os.getpid()}", ttl=30, wait=60)
        with open(log, "a") as out:
            out.write(f"enter {os.getpid()}\n")
        time.sleep(0.02)
        with open(log, "a") as out:
            out.write(f"leave {os.getpid()}\n")
        lease.release()
    ledger.dispose()


@pytest.mark.parametrize("seed", range(3))
def test_processes_at_once_never_hold_the_lease_together(ledger_url, tmp_path: Path, seed):
    log = tmp_path / f"log-{seed}"
    _ = Ledger(ledger_url).engine  # the schema exists before the processes race
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_hammer, args=(ledger_url, str(log), 4))
                 for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    lines = log.read_text().split("\n")[:-1]
    assert len(lines) == 4 * 4 * 2
    inside = None
    for line in lines:
        verb, pid = line.split()
        if verb == "enter":
            assert inside is None, f"{pid} entered while {inside} held the lease"
            inside = pid
        else:
            assert inside == pid
            inside = None


def test_begin_claims_and_records_the_intent_in_one_go(ledger):
    from tasks.decide.plan import Action, Decision

    decision = Decision("pb", 9, Action.NOTE, {}, "r", "e")
    run = ledger.start_run("pb", dry_run=False, parameters={})
    stale = ledger.lease("pb@ws", run_id=run, ttl=0.6)
    claim, first_intent = stale.begin(decision)
    assert claim.ok and not claim.earlier and first_intent
    again, _ = stale.begin(decision)
    assert not again.ok and "already claimed" in again.why
    stale._stop.set()
    stale._beat.join()
    time.sleep(0.8)
    fresh = ledger.lease("pb@ws", run_id=run, ttl=30, wait=0)
    stale._expires_mono = time.monotonic() + 30
    other = Decision("pb", 10, Action.NOTE, {}, "r", "e")
    fenced, _ = stale.begin(other)
    assert not fenced.ok and "no longer holds" in fenced.why
    claim, _ = fresh.begin(decision)
    assert claim.ok and claim.earlier  # earlier attempts are in the ledger: look for the note
    assert len(ledger.intents(run)) == 4  # every attempt is on the trail, refused ones too
    fresh.release()
