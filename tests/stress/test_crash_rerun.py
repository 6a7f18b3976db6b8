"""A playbook's process killed with SIGKILL in the middle of its writes, then run again.

The run happens in a child process (tests/stress/driver.py) that talks to the sandbox served
by this process over HTTP and to the session's Prefect server. The test watches the sandbox's
audit log and kills the child once k writes or notes have landed; then it runs the playbook
again here. The final workspace must equal a clean run's, no note may be doubled, and the
ledger must show the intents the kill interrupted.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.harness import our_note_lines
from tests.stress.conftest import (
    env_for_subprocess,
    final_view,
    new_writes,
    playbooks,
    run_flow,
)

pytestmark = [pytest.mark.slapd, pytest.mark.prefect]

ROOT = Path(__file__).resolve().parents[2]
# (playbook, audit-log entries to wait for before the kill). Each action is followed by its
# note: 1 lands between the first action and its note, an even count right after a note, and
# the triage's 60 past the middle of its writes (the session workspace gives it the most).
KILLS = [("triage", 1), ("triage", 60), ("departed", 2), ("auto-ignore", 9)]
CHILD_DEADLINE = 120.0  # seconds; a safety net, not a timing assertion


def run_child_until(box, name: str, k: int, log: Path) -> int:
    """Start the playbook in a child process; SIGKILL it once the audit log grew by k."""
    seen = len(box.store.audit_logs)
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.stress.driver", name],
            cwd=ROOT, env=env_for_subprocess(), stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + CHILD_DEADLINE
            while len(box.store.audit_logs) - seen < k:
                if child.poll() is not None:
                    pytest.fail(f"the child ended ({child.returncode}) before {k} writes:\n"
                                + log.read_text()[-3000:])
                if time.monotonic() > deadline:
                    pytest.fail(f"no {k} writes within {CHILD_DEADLINE} s:\n"
                                + log.read_text()[-3000:])
                time.sleep(0.002)  # polling the server's state, not waiting for an outcome
            os.kill(child.pid, signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
    return len(box.store.audit_logs) - seen


@pytest.mark.parametrize(("name", "k"), KILLS, ids=[f"{n}-after-{k}" for n, k in KILLS])
def test_sigkill_mid_apply_then_rerun_ends_like_a_clean_run(name, k, stress_world, clean_runs,
                                                           tmp_path):
    from clients.ledger import Ledger

    clean = clean_runs(name)
    # Latency makes each write take a few ms, so the kill lands close to the k-th write.
    with stress_world.sandbox(latency_ms=15) as box:
        ledger = Ledger(stress_world.point_at(box, f"crash-{name}-{k}"))
        before = box.state()
        landed = run_child_until(box, name, k, tmp_path / "child.log")
        box.set_adversity()
        killed = box.state()
        assert landed >= k
        assert new_writes(before, killed) != new_writes(clean["before"], clean["after"]), (
            "the child finished before the kill: no crash was tested")

        # The ledger shows the run that never ended and the intents it left without a result.
        interrupted = ledger.interrupted()
        assert interrupted, "a kill mid-apply leaves at least one intent without a result"
        crashed_run = {i.run_id for i in interrupted}
        assert len(crashed_run) == 1
        assert [r.ended_at for r in ledger.runs(playbooks()[name][2])] == [None]

        state, result = run_flow(name)
        assert state.is_completed(), state.message
        after = box.state()

    assert final_view(after) == final_view(clean["after"])
    writes = new_writes(before, after)
    assert writes == new_writes(clean["before"], clean["after"])
    notes = our_note_lines(after)
    assert all(n == 1 for n in notes.values()), [key for key, n in notes.items() if n > 1]
    assert set(notes) == set(our_note_lines(clean["after"]))
    # The interrupted intents stay visible (the ledger is append-only) and each incident they
    # name ended as decided.
    assert {i.id for i in ledger.interrupted()} == {i.id for i in interrupted}
    for intent in interrupted:
        incident_id = intent.incident_id
        assert final_view(after)[incident_id] == final_view(clean["after"])[incident_id]


def test_ledger_names_the_decisions_a_crash_or_a_failure_left_unfinished(tmp_path):
    """Fast and server-free: what the re-run above relies on to finish the notes."""
    from clients.ledger import Ledger
    from tasks.act import unfinished_decisions
    from tasks.decide.plan import Action, Decision

    def decision(incident_id: int) -> Decision:
        return Decision("pb", incident_id, Action.ASSIGN, {"email": f"p{incident_id}@corp.example"},
                        "member_author", f"evidence {incident_id}")

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    first = ledger.start_run("pb", dry_run=False, parameters={}, flow_run_id=None)
    plan = [decision(n) for n in (1, 2, 3, 4)]
    ledger.record_plan(first, plan)
    # 1 failed, then done by the second run; 2 failed; 3 died before its result; 4 applied.
    ledger.record_result(ledger.record_intent(first, plan[0]), "failed", "502")
    ledger.record_result(ledger.record_intent(first, plan[1]), "failed", "502")
    ledger.record_intent(first, plan[2])
    ledger.record_result(ledger.record_intent(first, plan[3]), "applied")
    second = ledger.start_run("pb", dry_run=False, parameters={}, flow_run_id=None)
    ledger.record_plan(second, [plan[0]])
    ledger.record_result(ledger.record_intent(second, plan[0]), "applied")
    dry = ledger.start_run("pb", dry_run=True, parameters={}, flow_run_id=None)
    ledger.record_plan(dry, [decision(5)])
    ledger.record_intent(dry, decision(5))

    assert [r["incident_id"] for r in ledger.unfinished("pb")] == [2, 3]
    assert ledger.unfinished("other") == []
    # Rebuilt with the same decision id (so the note marker matches); a re-planned one is left
    # to the plan.
    rebuilt = unfinished_decisions(ledger, "pb", planned=[plan[1]])
    assert [(d.incident_id, d.decision_id, d.evidence) for d in rebuilt] == [
        (3, plan[2].decision_id, "evidence 3")]
