"""Playbook benchmark: API requests against the lower bound and the notebook baseline, wall time
at simulated latency, and the share of it spent in Prefect. Prints figures; asserts nothing.

    .venv/bin/python -m benchmarks.playbooks                      # 10k incidents, 20 ms latency
    .venv/bin/python -m benchmarks.playbooks --incidents 2000 --playbooks commit-author-triage

For each playbook, on one sandbox whose state is restored to the generated workspace before
every real run (a fresh sandbox, without generating it again):
- requests by endpoint of a dry run and of a real run (Prefect local mode, as `flows.demo`);
- the lower bound computed from the sandbox's own state: filtered list pages + occurrence
  pages + member pages (ceil(matching items / 100) each) + writes (2 per action: the action
  and its note); the ratio with and without the write path's safety read (one GET per decision,
  re-reading the incident just before writing it: kept on purpose, DESIGN.md "One write path");
- the notebook-style baseline (benchmarks/baseline.py) on the same data;
- wall time of the dry and the real run at `--latency-ms`, with Prefect and without it (the
  same flow body with every task replaced by its plain function, logs to `logging`, artifacts
  and Secret-block lookups skipped): Prefect's share = (with - without) / with. Dry runs: the
  median of `--repeat` runs each (default 3, in alternating order); real runs: one each.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import pickle
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="gg-bench-prefect-"))
# As the demo: Prefect's console and API logs at WARNING (INFO lines would be measured as work).
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# The local API starts with the first flow run; on a loaded 2-core machine 20 s is too short.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

PAGE = 100
OPEN = ("TRIGGERED", "ASSIGNED")
DETAIL = "GET /v1/incidents/secrets/{id}"
OCCURRENCES = "GET /v1/occurrences/secrets"

# (playbook name, flow module, flow function, policy module, policy class)
PLAYBOOKS = [
    ("departed-developer-reassignment", "flows.departed_developers",
     "departed_developer_reassignment", "tasks.decide.departed", "DepartedPolicy"),
    ("test-directory-auto-ignore", "flows.test_credentials", "test_directory_auto_ignore",
     "tasks.decide.test_credentials", "TestCredentialPolicy"),
    ("commit-author-triage", "flows.commit_author_triage", "commit_author_triage",
     "tasks.decide.triage", "TriagePolicy"),
]


def say(text: str = "") -> None:
    print(text, flush=True)


def pages(count: int) -> int:
    """List pages needed for `count` items: an empty listing still costs one request."""
    return max(1, math.ceil(count / PAGE))


# ---------------------------------------------------------------- running without Prefect

@contextlib.contextmanager
def without_prefect(flow_module: str) -> Iterator[None]:
    """Run a flow's body with no Prefect machinery: each task is its plain function."""
    import importlib

    from prefect import Task

    plain_logger = logging.getLogger("benchmarks.plain")
    modules = [importlib.import_module(m) for m in
               ("tasks.fetch", "tasks.enrich", "tasks.run", "tasks.playbook", flow_module)]
    with contextlib.ExitStack() as stack:
        for module in modules:
            for name, value in list(vars(module).items()):
                if isinstance(value, Task):
                    stack.enter_context(mock.patch.object(module, name, _plain(value.fn)))
            if hasattr(module, "get_run_logger"):
                stack.enter_context(mock.patch.object(module, "get_run_logger", lambda: plain_logger))
        run_module = importlib.import_module("tasks.run")
        for name in ("create_table_artifact", "create_markdown_artifact"):
            stack.enter_context(mock.patch.object(run_module, name, lambda *a, **k: None))
        stack.enter_context(mock.patch.object(run_module, "is_interactive", lambda: False))
        playbook_module = importlib.import_module("tasks.playbook")
        stack.enter_context(mock.patch.object(playbook_module, "_flow_run_id", lambda: None))
        settings_module = importlib.import_module("tasks.settings")
        stack.enter_context(mock.patch.object(
            settings_module, "secret_value", lambda block, env: os.environ.get(env) or None))
        yield


def _plain(fn: Any) -> Any:
    """A task's function, taking its inputs as the task would: `quote(x)` passes x."""
    from prefect.utilities.annotations import quote

    def unquoted(*args: Any, **kwargs: Any) -> Any:
        args = tuple(a.unquote() if isinstance(a, quote) else a for a in args)
        kwargs = {k: v.unquote() if isinstance(v, quote) else v for k, v in kwargs.items()}
        return fn(*args, **kwargs)

    return unquoted


def run_flow(flow_fn: Any, *, prefect: bool, **parameters: Any) -> tuple[dict[str, Any], float]:
    """(the flow's result dict, wall seconds)."""
    started = time.perf_counter()
    if prefect:
        state = flow_fn(return_state=True, **parameters)
        data = state.result(raise_on_failure=False)
    else:
        with without_prefect(flow_fn.fn.__module__):
            data = flow_fn.fn(**parameters)
    elapsed = time.perf_counter() - started
    if isinstance(data, BaseException):
        raise RuntimeError(f"{flow_fn.name} failed: {data}") from data
    if not isinstance(data, dict):  # a Failed state built by Playbook.execute carries the dict
        data = data.result(raise_on_failure=False) if hasattr(data, "result") else data
    return data, elapsed


# ---------------------------------------------------------------- the lower bound

def lower_bound(playbook: str, policy: Any, state: dict[str, Any], *, actions: int,
                dry: Counter) -> dict[str, int]:
    """The fewest requests this playbook's data could cost, from the sandbox's own state."""
    incidents = list(state["incidents"].values())
    occurrences = state["occurrences"]  # incident id -> occurrences

    def occurrence_count(ids: set[int]) -> int:
        return sum(len(occurrences.get(i, ())) for i in ids)

    def with_status(*statuses: str) -> set[int]:
        return {i["id"] for i in incidents if i["status"] in statuses}

    bound: dict[str, int] = {}
    if playbook == "departed-developer-reassignment":
        bound["member pages"] = pages(len(state["members"]))
        assigned = with_status("ASSIGNED")
        bound["incident pages (ASSIGNED)"] = pages(len(assigned))
        bulk = 0
        if policy.include_unassigned:
            triggered = with_status("TRIGGERED")
            bound["incident pages (TRIGGERED)"] = pages(len(triggered))
            bulk = bound["occurrence pages (TRIGGERED)"] = pages(occurrence_count(triggered))
        # Incidents with no manager to take them need their leaking file: one listing each,
        # or one bulk sweep of the assigned incidents' occurrences, whichever is cheaper.
        per_incident = dry.get(OCCURRENCES, 0) - bulk
        if per_incident > 0:
            bound["occurrence pages (no-successor incidents)"] = min(
                per_incident, pages(occurrence_count(assigned)))
    elif playbook == "test-directory-auto-ignore":
        veto = set(policy.veto_tags)
        candidates = {
            i["id"] for i in incidents
            if i["status"] in OPEN and i["validity"] in policy.validities
            and not veto & set(i.get("tags") or ())
        }
        bound["incident pages (open, allowed validity, no veto tag)"] = pages(len(candidates))
        bound["occurrence pages (of those)"] = pages(occurrence_count(candidates))
    elif playbook == "commit-author-triage":
        triggered = with_status("TRIGGERED")
        bound["member pages"] = pages(len(state["members"]))
        bound["incident pages (TRIGGERED)"] = pages(len(triggered))
        bound["occurrence pages (TRIGGERED)"] = pages(occurrence_count(triggered))
    if actions:
        bound["writes (2 per action)"] = 2 * actions
    return bound


# ---------------------------------------------------------------- one playbook

def fresh(box: Any, initial: bytes) -> dict[str, Any]:
    """Put the sandbox back to the generated workspace; returns that state."""
    state = pickle.loads(initial)
    box.store.restore(state)
    return pickle.loads(initial)


def fresh_ledger(folder: Path, label: str) -> None:
    os.environ["LEDGER_URL"] = f"sqlite:///{folder / (label + '.sqlite')}"


def bench_playbook(box: Any, initial: bytes, spec: tuple[str, ...], folder: Path,
                   latency_ms: int, repeat: int = 1) -> dict[str, Any]:
    import importlib

    from benchmarks.baseline import run_baseline
    from clients.gitguardian import GitGuardianClient

    name, flow_module, flow_attr, policy_module, policy_attr = spec
    flow_fn = getattr(importlib.import_module(flow_module), flow_attr)
    policy = getattr(importlib.import_module(policy_module), policy_attr)()
    big = 1_000_000  # max_actions: the benchmark applies whole plans
    result: dict[str, Any] = {"playbook": name}

    # Dry run, no latency: the plan and the read requests.
    state = fresh(box, initial)
    box.set_adversity()
    fresh_ledger(folder, f"{name}-dry")
    dry, _ = run_flow(flow_fn, prefect=True, policy=policy, dry_run=True, max_actions=big)
    actions = len(dry["plan"])
    result["actions"] = actions
    result["dry_requests"] = dry["requests"]
    dry_counts = Counter(dry["requests"])
    result["dry_bound"] = lower_bound(name, policy, state, actions=0, dry=dry_counts)
    result["real_bound"] = lower_bound(name, policy, state, actions=actions, dry=dry_counts)

    # The notebook on the same data (reads only; its writes counted from our plan).
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    started = time.perf_counter()
    result["baseline_requests"] = run_baseline(client, name, actions=actions)
    result["baseline_seconds_no_latency"] = time.perf_counter() - started

    # Wall time at latency: dry runs with and without Prefect, `repeat` pairs in alternating
    # order; the median of each. One pair alone is noise on a shared machine: the same run
    # varies by a second or more, as much as the Prefect overhead being measured.
    box.set_adversity(latency_ms=latency_ms)
    times: dict[bool, list[float]] = {True: [], False: []}
    for attempt in range(repeat):
        for prefect in (True, False) if attempt % 2 == 0 else (False, True):
            fresh_ledger(folder, f"{name}-dry-{prefect}-{attempt}")
            _, seconds = run_flow(flow_fn, prefect=prefect, policy=policy, dry_run=True,
                                  max_actions=big)
            times[prefect].append(seconds)
    for prefect, label in ((True, "prefect"), (False, "plain")):
        result[f"dry_seconds_{label}"] = statistics.median(times[prefect])
        result[f"dry_seconds_{label}_all"] = [round(t, 2) for t in times[prefect]]

    # Real runs at latency on a fresh state each, with and without Prefect.
    for prefect in (True, False):
        fresh(box, initial)
        box.set_adversity(latency_ms=latency_ms)
        fresh_ledger(folder, f"{name}-real-{prefect}")
        real, seconds = run_flow(flow_fn, prefect=prefect, policy=policy, dry_run=False,
                                 max_actions=big)
        label = "prefect" if prefect else "plain"
        result[f"real_seconds_{label}"] = seconds
        result[f"real_counts_{label}"] = real["counts"]
        if prefect:
            result["real_requests"] = real["requests"]
    box.set_adversity()
    fresh(box, initial)
    return result


def summarise(r: dict[str, Any]) -> dict[str, Any]:
    """The table's figures for one playbook."""
    dry_total = sum(r["dry_requests"].values())
    real_total = sum(r["real_requests"].values())
    safety = r["real_requests"].get(DETAIL, 0)
    dry_bound, real_bound = sum(r["dry_bound"].values()), sum(r["real_bound"].values())
    baseline = sum(r["baseline_requests"].values())

    def share(kind: str) -> float:
        with_p, plain = r[f"{kind}_seconds_prefect"], r[f"{kind}_seconds_plain"]
        return (with_p - plain) / with_p if with_p else 0.0

    return {
        "playbook": r["playbook"],
        "actions": r["actions"],
        "dry requests": dry_total,
        "dry bound": dry_bound,
        "dry ratio": round(dry_total / dry_bound, 2),
        "real requests": real_total,
        "real bound": real_bound,
        "real ratio": round(real_total / real_bound, 2),
        "real ratio w/o safety read": round((real_total - safety) / real_bound, 2),
        "baseline requests": baseline,
        "baseline / ours (real)": round(baseline / real_total, 1),
        "baseline reads / ours (dry)": round(
            (baseline - r["actions"]) / dry_total, 1),
        "dry s (Prefect)": round(r["dry_seconds_prefect"], 2),
        "dry s (plain)": round(r["dry_seconds_plain"], 2),
        "Prefect share dry": f"{share('dry'):.0%}",
        "real s (Prefect)": round(r["real_seconds_prefect"], 2),
        "real s (plain)": round(r["real_seconds_plain"], 2),
        "Prefect share real": f"{share('real'):.0%}",
    }


def print_details(r: dict[str, Any]) -> None:
    say(f"\n## {r['playbook']}: {r['actions']} actions planned")
    say(f"  dry runs at latency, s: Prefect {r['dry_seconds_prefect_all']}, "
        f"plain {r['dry_seconds_plain_all']} (medians in the table)")
    say(f"  real-run outcomes: Prefect {r['real_counts_prefect']}, plain {r['real_counts_plain']}")
    for label, counts in (("dry run", r["dry_requests"]), ("real run", r["real_requests"]),
                          ("notebook baseline", r["baseline_requests"])):
        say(f"  {label} requests by endpoint ({sum(counts.values())}):")
        for key, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            say(f"    {n:>7}  {key}")
    for label, bound in (("dry", r["dry_bound"]), ("real", r["real_bound"])):
        say(f"  lower bound, {label} ({sum(bound.values())}): "
            + ", ".join(f"{k} {v}" for k, v in bound.items()))


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    width = max(len(k) for k in keys)
    say("\n" + "figure".ljust(width) + "".join(f" | {r['playbook'][:30]:>30}" for r in rows))
    for key in keys[1:]:
        say(key.ljust(width) + "".join(f" | {str(r[key]):>30}" for r in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.playbooks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--playbooks", nargs="+", default=[p[0] for p in PLAYBOOKS],
                        choices=[p[0] for p in PLAYBOOKS])
    parser.add_argument("--repeat", type=int, default=3,
                        help="dry runs with and without Prefect, each (median; default 3)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    import sandbox
    from flows.demo import _environment
    from sandbox.export import export

    folder = Path(tempfile.mkdtemp(prefix="gg-bench-playbooks-"))
    started = time.perf_counter()
    workspace = sandbox.build_workspace(args.seed, args.incidents, None)
    say(f"workspace: seed {args.seed}, {args.incidents} incidents, generated in "
        f"{time.perf_counter() - started:.1f} s")
    export(workspace, folder)
    results = []
    with sandbox.running(workspace=workspace) as box:
        _environment(box, folder)  # the demo's settings: offline directory, git mirrors, no limiter
        initial = pickle.dumps(box.state())
        # Prefect's first flow run starts its local API: a one-time cost, timed apart.
        from flows.departed_developers import departed_developer_reassignment

        fresh_ledger(folder, "warm-up")
        _, warm = run_flow(departed_developer_reassignment, prefect=True, dry_run=True, max_actions=0)
        say(f"Prefect warm-up: the process's first flow run (local API start + one dry run of "
            f"the departed playbook, no latency): {warm:.1f} s")
        for spec in PLAYBOOKS:
            if spec[0] in args.playbooks:
                say(f"running {spec[0]}...")
                try:
                    result = bench_playbook(box, initial, spec, folder, args.latency_ms,
                                            max(1, args.repeat))
                except ImportError as exc:  # a playbook being changed in the tree: say so
                    say(f"  skipped: cannot import it ({exc})")
                    continue
                print_details(result)
                results.append(result)
    rows = [summarise(r) for r in results]
    say(f"\nPlaybooks on {args.incidents} incidents (seed {args.seed}), "
        f"wall times at {args.latency_ms} ms latency per request:")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "details": results, "warm_up_s": warm,
                                         "incidents": args.incidents, "latency_ms": args.latency_ms},
                                        indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
