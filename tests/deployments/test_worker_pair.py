"""Two real workers, two deployments of the bulk flow, started together: one run writes, once.

One Prefect server, one process work pool, two `prefect worker start` processes (one flow run
each: `--limit 1`) with the same environment: the sandbox API with network-like latency, one
ledger (SQLite) that both share, the directory and git export of the other deployment tests.
Two of prefect.yaml's bulk deployments (each has its own `concurrency_limit: 1`, which does not
keep them apart) are triggered at the same moment with the same `note` action on the same
~32 open incidents. Whatever the order, the sandbox must end with one note per incident and
no write repeated, and exactly one of the runs must have applied the notes: the other waited
for the playbook's lease and found everything done, or ended saying another run held it.
The runs must have been in flight at the same time, one on each worker, or this proves nothing.
"""
from __future__ import annotations

import copy
import inspect
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sandbox as sandbox_package
from deployments import config
from sandbox.export import environment
from tests.fixtures.harness import MARKER, our_note_lines
from tests.stress.conftest import new_writes

from .conftest import PrefectServer, stop, tail, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.prefect]

FLOW = "bulk-remediation"
DEPLOYMENTS = ("ad-hoc", "resolve-invalid-secrets")  # two of prefect.yaml's bulk deployments
WORKERS = ("pair-worker-a", "pair-worker-b")
SELECTION = {"status": ["TRIGGERED", "ASSIGNED"], "severity": ["critical", "info"]}
REASON = "Worker-pair test: this note is written once per incident, by one run."
# Per request. A note costs a run three requests (read the incident, look for the marker, add
# the note), four incidents at a time: ~32 incidents take about 8 x 3 x 0.3 = 7 s to write, while
# the two runs start within 1-2 s of each other (each worker polls every second). Without
# exclusion the later run catches up (an incident already noted costs it two requests, not
# three) and both then note the same incidents: measured, 16 to 32 of 32 noted twice.
LATENCY_MS = 300
FINISH_TIMEOUT = 150  # seconds, for both runs to reach a final state


@pytest.fixture
def slow_sandbox(sandbox_workspace) -> Iterator[sandbox_package.Sandbox]:
    """A fresh sandbox over the session workspace, every answer delayed like a network's."""
    options: dict[str, Any] = {"latency_ms": LATENCY_MS}
    if "jitter_ms" in inspect.signature(sandbox_package.running).parameters:
        options["jitter_ms"] = 600  # JITTER: 0..600 ms more per request, once running() has it
    with sandbox_package.running(workspace=copy.deepcopy(sandbox_workspace), **options) as box:
        yield box


def _selected(box: sandbox_package.Sandbox) -> set[int]:
    return {i for i, incident in box.state()["incidents"].items()
            if incident["status"] in SELECTION["status"]
            and incident["severity"] in SELECTION["severity"]}


def _applied(record: Any) -> int | None:
    """How many decisions a ledger run applied (None: it recorded no end)."""
    if record is None or not record.summary:
        return None
    return int((record.summary.get("counts") or {}).get("applied", 0))


def _note_creations(before: dict[str, Any], after: dict[str, Any]) -> Counter:
    """incident -> notes created on it since `before`, as the audit log tells it."""
    return Counter(
        int((log.get("data") or {}).get("incident_id"))
        for log in after["audit_logs"][len(before["audit_logs"]):]
        if log["event_name"] == "secret_incident_note.created"
    )


def _report(runs: dict[str, Any], ledger_runs: dict[str, Any], notes: Counter,
            writes: Counter, logs: dict[str, Path]) -> str:
    lines = []
    for name, run in runs.items():
        state = run.state
        record = ledger_runs.get(str(run.id))
        ledger = None if record is None else (record.state, str(record.started_at),
                                              str(record.ended_at), record.summary)
        lines.append(
            f"{name}: flow run {run.id} {state.type.value if state else None} "
            f"({state.name if state else None}): {state.message if state else None!r}\n"
            f"  start {run.start_time} end {run.end_time} "
            f"worker {run.labels.get('prefect.worker.name')}\n"
            f"  ledger run (state, start, end, summary): {ledger}"
        )
    doubled = {k: n for k, n in notes.items() if n > 1}
    repeated = {k: n for k, n in writes.items() if n > 1}
    lines.append(f"notes: {sum(notes.values())} on {len({i for i, _ in notes})} incidents, "
                 f"{len(doubled)} marker(s) written more than once: {sorted(doubled.items())[:5]}")
    lines.append(f"write events repeated on one incident: {len(repeated)}")
    for name, path in logs.items():
        lines.append(f"--- {name} log (tail) ---\n{tail(path, 2500)}")
    return "\n".join(lines)


def test_two_workers_two_bulk_deployments_write_each_note_once(
    prefect_server_process: PrefectServer, slow_sandbox, sandbox_export: Path, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import WorkerStatus
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from clients.ledger import Ledger

    server, box = prefect_server_process, slow_sandbox
    server.run_cli("-m", "deployments.setup", env={"GITGUARDIAN_REQUESTS_PER_MINUTE": "0"})
    server.run_cli("--no-prompt", "deploy", *(a for d in DEPLOYMENTS for a in
                                               ("--name", f"{FLOW}/{d}")))
    wanted = _selected(box)
    assert 30 <= len(wanted) <= 40, len(wanted)

    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    worker_env = {**environment(sandbox_export, url=box.url, key=box.token),
                  "LEDGER_URL": ledger_url}
    parameters = {
        "policy": {"selection": SELECTION, "action": {"kind": "note"}, "reason": REASON},
        "dry_run": False,
        "max_actions": 500,
    }
    before = box.state()
    logs = {name: tmp_path / f"{name}.log" for name in WORKERS}
    workers = {name: server.start_worker(config.WORK_POOL, worker_env, logs[name],
                                         ["--name", name, "--limit", "1"])
               for name in WORKERS}
    runs: dict[str, Any] = {}
    try:
        with temporary_settings({PREFECT_API_URL: server.url}), \
                get_client(sync_client=True) as client:
            def alive() -> None:
                for name, process in workers.items():
                    if process.poll() is not None:
                        raise AssertionError(f"{name} exited:\n{tail(logs[name])}")

            def both_online() -> bool:
                alive()
                online = {w.name for w in client.read_workers_for_work_pool(config.WORK_POOL)
                          if w.status == WorkerStatus.ONLINE}
                return set(WORKERS) <= online

            # Both workers polling before anything is triggered, so neither run waits for one.
            wait_until(both_online, timeout=60, what="both workers online")
            triggered = {d: run_deployment(f"{FLOW}/{d}", parameters=parameters, timeout=0)
                         for d in DEPLOYMENTS}

            def both_final() -> bool:
                alive()
                for d, run in triggered.items():
                    runs[d] = client.read_flow_run(run.id)
                return all(r.state is not None and r.state.is_final() for r in runs.values())

            wait_until(both_final, timeout=FINISH_TIMEOUT, interval=1,
                       what="both flow runs to reach a final state")
    finally:
        for process in workers.values():
            stop(process, times=2)

    after = box.state()
    notes = Counter({k: n for k, n in our_note_lines(after).items()
                     if f"{MARKER} {FLOW} decision" in k[1]})
    # A note is a write too: the audit log's note creations, counted per incident.
    writes = new_writes(before, after) + Counter(
        {("secret_incident_note.created", (str(i),)): n
         for i, n in _note_creations(before, after).items()})
    by_flow_run = {r.flow_run_id: r for r in Ledger(ledger_url).runs(FLOW)}
    diagnostics = _report(runs, by_flow_run, notes, writes, logs)
    print(diagnostics)

    # Both runs ended, and they were in flight at the same time, one on each worker.
    assert all(r.state.is_final() for r in runs.values()), diagnostics
    first, second = sorted(runs.values(), key=lambda r: r.start_time)
    assert first.start_time and second.start_time and first.end_time, diagnostics
    assert second.start_time < first.end_time, f"the runs did not overlap\n{diagnostics}"
    picked = sorted(r.labels.get("prefect.worker.name") for r in runs.values())
    assert picked == sorted(WORKERS), f"each worker should run one: {picked}\n{diagnostics}"

    # No note twice, no write twice; every selected incident has its note.
    applied = {d: _applied(by_flow_run.get(str(r.id))) for d, r in runs.items()}
    doubled = {k: n for k, n in notes.items() if n > 1}
    assert not doubled, (
        f"{len(doubled)} of {len(wanted)} incidents carry their note more than once "
        f"({sum(notes.values())} notes in all); applied per run: {applied}\n{diagnostics}"
    )
    repeated = [k for k, n in writes.items() if n > 1]
    assert not repeated, f"{len(repeated)} writes repeated on one incident\n{diagnostics}"
    assert {i for i, _ in notes} == wanted, diagnostics

    # Exactly one run applied the notes and completed; the other applied none: it waited for the
    # lease and then found every note written (its ledger run says so), or it ended saying that
    # another run held the lease.
    assert sorted(n or 0 for n in applied.values()) == [0, len(wanted)], (
        f"applied: {applied}\n{diagnostics}"
    )
    writer = next(d for d, n in applied.items() if n)
    assert runs[writer].state.is_completed(), diagnostics
    other = next(d for d in runs if d != writer)
    message = (runs[other].state.message or "").lower()
    assert applied[other] == 0 or "lease" in message, (
        f"{other} neither finished its run nor said why it wrote nothing\n{diagnostics}"
    )
