"""Every playbook under the sandbox's adversity ends where a clean run ends.

Adversity: 10% server errors (500/502/503), 2% connection resets, a per-token rate limit whose
429s carry Retry-After, and latency. A run that ends Failed (a write or a note the client
must not retry blindly failed) is run again, as an operator would; then the workspace must
equal a clean run's on an identical fresh sandbox, with no write or note made twice and a
ledger result for every intent.
"""
from __future__ import annotations

import pytest

from tests.fixtures.harness import our_note_lines
from tests.stress.conftest import final_view, new_writes, playbooks, run_flow

pytestmark = [pytest.mark.slapd, pytest.mark.prefect]

# Seed 11 in the default suite; seed 12 with the other seed sweeps (`make sweep`, run by .ci/run).
SEEDS = (11, pytest.param(12, marks=pytest.mark.sweep))
MAX_RUNS = 3  # the first run and up to two re-runs


def adversity(seed: int) -> dict:
    # 30 requests per 1 s window: a run meets a burst of 429s or two, each Retry-After 1 s.
    return dict(rate_limit=30, window_seconds=1.0, faults=0.10, resets=0.02, latency_ms=3,
                seed=seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["departed", "auto-ignore", "triage"])
def test_faults_end_where_a_clean_run_ends(name, seed, stress_world, clean_runs):
    clean = clean_runs(name)
    from clients.ledger import Ledger

    with stress_world.sandbox(**adversity(seed)) as box:
        ledger_url = stress_world.point_at(box, f"faults-{name}-{seed}")
        before = box.state()
        states = []
        for _ in range(MAX_RUNS):
            state, result = run_flow(name)
            states.append(state)
            if state.is_completed():
                break
            # Failed (a write or note it must not repeat blindly did not go through), never Crashed.
            assert state.is_failed(), state
        assert states[-1].is_completed(), f"{len(states)} runs, last: {states[-1].message}"
        box.set_adversity()
        after = box.state()
        fates = dict(box.fates)

    # The runs met throttling and server errors (resets at 2% of ~100 requests are likely but
    # not certain for a given seed: not required here; benchmarks/faults.py counts them).
    assert 429 in fates and {500, 502, 503} & set(fates), fates
    # The same incidents end in the same status with the same assignee and ignore reason.
    assert final_view(after) == final_view(clean["after"])
    # The same writes, each once (a retried or re-run write never lands twice).
    writes = new_writes(before, after)
    assert writes == new_writes(clean["before"], clean["after"])
    assert all(n == 1 for n in writes.values()), [k for k, n in writes.items() if n > 1]
    # One note per decision, the same notes as the clean run.
    notes = our_note_lines(after)
    assert all(n == 1 for n in notes.values()), [k for k, n in notes.items() if n > 1]
    assert set(notes) == set(our_note_lines(clean["after"]))
    # Every intent has its result, and every write the server saw is in the ledger as done.
    ledger = Ledger(ledger_url)
    assert ledger.interrupted() == []
    playbook = playbooks()[name][2]
    done = {(a.incident_id, a.action) for a in ledger.applied(playbook)}
    for (action, incident_id) in writes:
        assert (int(incident_id), action) in done
