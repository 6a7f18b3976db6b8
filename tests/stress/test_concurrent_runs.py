"""Two command-line runs of one playbook started at the same moment against one sandbox with
network-like jitter (0-600 ms added to every request), sharing one ledger URL: SQLite (one
machine) or a real PostgreSQL server (what workers on several hosts share).

Over many jitter seeds: no incident gets two notes with one marker, no write event is repeated
on an incident in the audit log, and the runs' ledger records say what each did: one applied
the plan, the other waited for the lease and then found nothing left to do (or only decisions
already done). The `sweep` group (run by .ci/run) runs every case, 15 seeds each; the default
suite runs one seed of two cases, one per ledger (a playbook's SQLite ledger, the bulk notes on
PostgreSQL), so that `make test` shows the claim without repeating the sweep's seeds.
"""
from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.harness import our_note_lines
from tests.stress.conftest import env_for_subprocess, set_common_env

pytestmark = [pytest.mark.slapd, pytest.mark.prefect, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
JITTER_MS = 600
SWEEP_SEEDS = 15  # five rounds of PAIRS_AT_ONCE pairs per case: 120 pairs in all
PAIRS_AT_ONCE = 3  # pairs of processes run side by side in the sweep (they mostly wait)
# Both processes' first request is held until the other's arrives, but a process can still be
# slowed after it (its Prefect server answering slowly under the load of many processes), and
# reach the lease after the other run ended: that pair then proves nothing about running at
# once (its invariants are still checked). Most pairs must overlap.
MIN_OVERLAPPING = 0.9
CHILD_DEADLINE = 600.0  # a safety net, not a timing assertion

BULK_NOTE = [
    "--reason", "Concurrency check: one note per incident",
    "--selection", json.dumps({"status": ["TRIGGERED", "ASSIGNED"],
                               "severity": ["critical", "info"]}),
    "--action", json.dumps({"kind": "note"}),
]
# name -> (CLI module, its arguments, the ledger's playbook name)
CASES: dict[str, tuple[str, list[str], str]] = {
    "departed": ("flows.departed_developers", [], "departed-developer-reassignment"),
    "auto-ignore": ("flows.auto_ignore", [], "test-directory-auto-ignore"),
    "triage": ("flows.commit_author_triage", [], "commit-author-triage"),
    "bulk-note": ("flows.bulk_remediation", BULK_NOTE, "bulk-remediation"),
}
# Writes whose repeat on one incident would be a duplicate (notes are counted by marker).
WRITES = ("assign", "unassign", "resolve", "ignore", "reopen", "share", "unshare")


def _write_events(before: dict[str, Any], after: dict[str, Any]) -> Counter:
    from sandbox.store import audit_write

    seen = len(before["audit_logs"])
    writes = (audit_write(log) for log in after["audit_logs"][seen:])
    return Counter(write for write in writes if write and write[0] in WRITES)


def _run_pair(world: dict[str, Any], name: str, ledger_url: str, seed: int,
              tmp: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    import sandbox as sandbox_package
    from clients.ledger import Ledger, intents_table, results_table

    module, arguments, playbook = CASES[name]
    with sandbox_package.running(workspace=copy.deepcopy(world["workspace"])) as box:
        box.set_adversity(jitter_ms=JITTER_MS, seed=seed)
        # Each process checks its key twice: on the command line before Prefect loads, then in
        # the flow right before the lease. Both checks are held in the server until the other
        # process's arrives (the 1st and 2nd calls, then the 3rd and 4th): the runs really reach
        # the lease together, however long each takes to load Prefect.
        barriers = [threading.Barrier(2), threading.Barrier(2)]
        calls = itertools.count()

        def hold(_box: Any) -> None:
            barriers[min(next(calls) // 2, 1)].wait(timeout=120)

        box.before("GET", "/v1/api_tokens/self", hold, times=4)
        env = {**world["env"], "GITGUARDIAN_API_URL": box.url, "GITGUARDIAN_API_KEY": box.token,
               "LEDGER_URL": ledger_url, "LEDGER_LEASE_WAIT_SECONDS": "600"}
        before = box.state()
        command = [sys.executable, "-m", module, "--apply", "--max-actions", "1000", *arguments]
        logs = [tmp / f"{name}-{seed}-{side}.log" for side in "ab"]
        children = []
        for log in logs:
            with open(log, "wb") as out:
                children.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=out,
                                                 stderr=subprocess.STDOUT))
        deadline = time.monotonic() + CHILD_DEADLINE
        codes = []
        for child in children:
            try:
                codes.append(child.wait(max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                child.kill()
                codes.append(child.wait())
        after = box.state()
    ledger = Ledger(ledger_url)
    runs = [r for r in ledger.runs(playbook) if not r.dry_run]
    applied = {r.id: 0 for r in runs}
    with ledger.engine.connect() as connection:
        rows = connection.execute(
            sa.select(intents_table.c.run_id, results_table.c.result)
            .select_from(results_table.join(intents_table,
                                            results_table.c.intent_id == intents_table.c.id))
        ).all()
    results: dict[str, Counter] = {r.id: Counter() for r in runs}
    for run_id, result in rows:
        results.setdefault(run_id, Counter())[result] += 1
        if result == "applied":
            applied[run_id] = applied.get(run_id, 0) + 1
    ledger.dispose()
    return {"codes": codes, "logs": [log.read_text(errors="replace")[-3000:] for log in logs],
            "runs": runs, "results": results, "applied": applied,
            "notes": our_note_lines(after), "writes": _write_events(before, after)}


def _check(outcome: dict[str, Any], name: str, seed: int) -> None:
    context = f"{name}, jitter seed {seed}"
    assert outcome["codes"] == [0, 0], (context, outcome["codes"], outcome["logs"])
    doubled_notes = {k: n for k, n in outcome["notes"].items() if n > 1}
    assert not doubled_notes, (context, "notes written twice", doubled_notes)
    repeated = {k: n for k, n in outcome["writes"].items() if n > 1}
    assert not repeated, (context, "write events repeated on one incident", repeated)
    runs = outcome["runs"]
    assert len(runs) == 2 and all(r.state == "completed" for r in runs), (context, runs)
    applied = sorted(outcome["applied"].values())
    assert applied[0] == 0 < applied[1], (context, "one run applies, the other finds it done",
                                           outcome["results"])


def _overlapped(outcome: dict[str, Any]) -> bool:
    """The run that applied nothing waited for the other's lease: they ran at once."""
    waited = [r.summary.get("lease_waited", 0) for r in outcome["runs"]
              if outcome["applied"].get(r.id, 0) == 0]
    return bool(waited) and waited[0] > 0


@pytest.fixture(scope="module")
def world(sandbox_workspace, sandbox_directory, sandbox_export, prefect_server,
          tmp_path_factory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("concurrent")
    with pytest.MonkeyPatch.context() as mp:
        set_common_env(mp, sandbox_directory, sandbox_export, tmp)
        env = env_for_subprocess()
    env.pop("LEDGER_URL", None)
    # Eight processes at once share the session's Prefect server (SQLite): under that load it
    # may answer 503 for a moment, which Prefect's client retries; give it room to.
    env.update({"PREFECT_LOGGING_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
                "PREFECT_CLIENT_MAX_RETRIES": "12"})
    return {"workspace": sandbox_workspace, "env": env}


def _ledger_url(kind: str, tmp: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'ledger-{os.urandom(4).hex()}.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    return server.url(server.create_database())


LEDGERS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# The default suite's cases: the sweep runs all of them (CASES x LEDGERS), seed 1 included.
DEFAULT_CASES = [("departed", "sqlite"),
                 pytest.param("bulk-note", "postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def first_pairs(world, request, tmp_path_factory) -> Iterator[dict[tuple[str, str], Future]]:
    """(case, ledger) -> the future outcome of its first pair (seed 1), for every case of
    `test_two_runs_at_once_write_each_decision_once` this session selected. The pairs run
    PAIRS_AT_ONCE at a time (they mostly wait for the sandbox's jitter), started when the
    first of those tests asks; each test then checks its own pair."""
    wanted = [item.callspec.params for item in request.session.items
              if item.module is request.module and getattr(item, "callspec", None)
              and item.originalname == "test_two_runs_at_once_write_each_decision_once"]
    pool = ThreadPoolExecutor(PAIRS_AT_ONCE)
    futures: dict[tuple[str, str], Future] = {}
    for params in wanted:
        name, kind = params["name"], params["kind"]
        if kind == "postgres":
            try:
                request.getfixturevalue("postgres_server")
            except pytest.skip.Exception:
                continue  # the test itself skips, with the reason
        tmp = tmp_path_factory.mktemp(f"first-pair-{name}-{kind}")
        futures[(name, kind)] = pool.submit(_run_pair, world, name,
                                            _ledger_url(kind, tmp, request), 1, tmp)
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("name, kind", DEFAULT_CASES)
def test_two_runs_at_once_write_each_decision_once(first_pairs, world, name, kind, tmp_path,
                                                   request):
    for seed in (1, 2, 3):  # until a pair really overlaps (nearly always the first)
        if seed == 1 and (name, kind) in first_pairs:
            outcome = first_pairs[(name, kind)].result()
        else:
            outcome = _run_pair(world, name, _ledger_url(kind, tmp_path, request), seed,
                                tmp_path)
        _check(outcome, name, seed)
        if _overlapped(outcome):
            return
    pytest.fail(f"{name}: in 3 pairs, no two runs were in flight at the same time")


@pytest.mark.sweep
@pytest.mark.parametrize("kind", LEDGERS)
@pytest.mark.parametrize("name", list(CASES))
def test_two_runs_at_once_over_many_seeds(world, name, kind, tmp_path, request):
    urls = {seed: _ledger_url(kind, tmp_path, request) for seed in range(SWEEP_SEEDS)}
    with ThreadPoolExecutor(PAIRS_AT_ONCE) as pool:
        outcomes = dict(zip(urls, pool.map(
            lambda seed: _run_pair(world, name, urls[seed], seed, tmp_path), urls)))
    for seed, outcome in outcomes.items():
        _check(outcome, name, seed)
    apart = [seed for seed, outcome in outcomes.items() if not _overlapped(outcome)]
    assert len(apart) <= SWEEP_SEEDS * (1 - MIN_OVERLAPPING), (
        f"{name}: the runs of seeds {apart} were not in flight at the same time")
