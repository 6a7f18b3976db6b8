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
  same flow body, `flow.fn`, in `tasks.runtime.plain()`: tasks run as their functions, logs go
  to `logging`, no artifacts, no Secret-block lookup; nothing is patched): Prefect's share =
  (with - without) / with. Dry runs: the median of `--repeat` runs each (default 3, in
  alternating order); real runs: one each;
- the write path alone (benchmarks/writepath.py): the dry run's plan through
  `act.apply_plan`, plain (`run_chunk=None`) and through Prefect (`tasks.playbook._run_chunk`,
  a task run per chunk, in a flow), each on the generated state, with `--writers` threads and a
  client and ledger wrapped to time it from outside: the residual window (end of each applied
  action's safety read to the end of its write, client clock: p50, p95, max), time per action
  against the floor (requests per action x latency / writers), ledger time per decision
  (claim + intent + result) and after-write audit-log requests per chunk. `--real` picks the
  real runs to make (whole flows, the write path, or both).
"""
from __future__ import annotations

import math
import os
import pickle
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import common

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# As the demo: Prefect's console and API logs at WARNING (INFO lines would be measured as work).
common.quiet_prefect("WARNING")
# The local API starts with the first flow run; on a loaded 2-core machine 20 s is too short.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

PAGE = 100
DETAIL = "GET /v1/incidents/secrets/{id}"
OCCURRENCES = "GET /v1/occurrences/secrets"

# (playbook name, flow module, flow function, policy module, policy class)
PLAYBOOKS = [
    ("departed-developer-reassignment", "flows.departed_developers",
     "departed_developers", "tasks.decide.departed_developers", "DepartedDevelopersPolicy"),
    ("test-directory-auto-ignore", "flows.auto_ignore", "auto_ignore",
     "tasks.decide.auto_ignore", "AutoIgnorePolicy"),
    ("commit-author-triage", "flows.commit_author_triage", "commit_author_triage",
     "tasks.decide.commit_author_triage", "CommitAuthorTriagePolicy"),
]


def say(text: str = "") -> None:
    print(text, flush=True)


def pages(count: int) -> int:
    """List pages needed for `count` items: an empty listing still costs one request."""
    return max(1, math.ceil(count / PAGE))


# ---------------------------------------------------------------- running without Prefect

def run_flow(flow_fn: Any, *, prefect: bool, **parameters: Any) -> tuple[dict[str, Any], float]:
    """(the flow's result dict, wall seconds). Without Prefect: the same flow body (`flow.fn`)
    in `tasks.runtime.plain()`, the flows' supported plain mode: each task runs as its plain
    function, logs go to `logging`, no artifacts, no Secret-block lookup."""
    from tasks import runtime

    started = time.perf_counter()
    if prefect:
        state = flow_fn(return_state=True, **parameters)
        data = state.result(raise_on_failure=False)
    else:
        with runtime.plain():
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
    from clients.models import OPEN_STATUSES

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
            if i["status"] in OPEN_STATUSES and i["validity"] in policy.validities
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


def note_for(playbook: str, policy: Any) -> Any:
    """The note the playbook's flow passes to the write path."""
    if playbook == "departed-developer-reassignment":
        from tasks.decide.departed_developers import render_note

        return lambda decision: render_note(decision, policy)
    if playbook == "test-directory-auto-ignore":
        from tasks.decide.auto_ignore import render_note

        return render_note
    from tasks.decide.commit_author_triage import render_note

    return render_note


def bench_write_path(box: Any, initial: bytes, name: str, policy: Any, plan_rows: list[Any],
                     folder: Path, latency_ms: int, writers: int,
                     chunk_size: int) -> dict[str, Any]:
    """The dry run's plan through `act.apply_plan` alone, plain and through Prefect, each on the
    generated state with a fresh ledger, the client and ledger wrapped to time the write path
    from outside (benchmarks/writepath.py)."""
    from benchmarks import writepath
    from clients.ledger import Ledger
    from tasks import runtime, settings

    plan = writepath.plan_from_rows(name, plan_rows)
    runs: dict[str, Any] = {}
    for prefect in (False, True):
        fresh(box, initial)
        box.set_adversity(latency_ms=latency_ms)
        with runtime.plain():  # the flows' client settings, without a Secret-block lookup
            client = settings.gitguardian_client()
        ledger = Ledger(f"sqlite:///{folder / f'{name}-write-path-{prefect}.sqlite'}")
        try:
            run = writepath.apply_timed(plan, client=client, ledger=ledger,
                                        note=note_for(name, policy), prefect=prefect,
                                        workers=writers, chunk_size=chunk_size)
        finally:
            ledger.dispose()
        run["summary"] = writepath.summary(run, latency_ms=latency_ms, workers=writers)
        runs["prefect" if prefect else "plain"] = run
    box.set_adversity()
    fresh(box, initial)
    return runs


def bench_playbook(box: Any, initial: bytes, spec: tuple[str, ...], folder: Path,
                   latency_ms: int, repeat: int = 1, runs: tuple[str, ...] = ("flow", "write"),
                   writers: int = 4, chunk_size: int = 100) -> dict[str, Any]:

    from benchmarks.baseline import run_baseline
    from clients.gitguardian import GitGuardianClient

    name, flow_fn, policy = common.load_playbook(spec)
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
    for prefect in (True, False) if "flow" in runs else ():
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
            result["max_read_age"] = real.get("max_read_age")
    box.set_adversity()
    fresh(box, initial)
    if "write" in runs:
        result["write_path"] = bench_write_path(box, initial, name, policy, dry["plan"], folder,
                                                latency_ms, writers, chunk_size)
    return result


def summarise(r: dict[str, Any]) -> dict[str, Any]:
    """The table's figures for one playbook ("n/a" for a part not run: see --real)."""
    dry_total = sum(r["dry_requests"].values())
    dry_bound, real_bound = sum(r["dry_bound"].values()), sum(r["real_bound"].values())
    baseline = sum(r["baseline_requests"].values())

    def share(with_p: float, plain: float) -> str:
        return f"{(with_p - plain) / with_p:.0%}" if with_p else "n/a"

    row: dict[str, Any] = {
        "playbook": r["playbook"],
        "actions": r["actions"],
        "dry requests": dry_total,
        "dry bound": dry_bound,
        "dry ratio": round(dry_total / dry_bound, 2),
        "real requests": "n/a", "real bound": real_bound, "real ratio": "n/a",
        "real / (dry + 2 per action)": "n/a", "safety read max age s": "n/a",
        "real ratio w/o safety read": "n/a",
        "baseline requests": baseline,
        "baseline / ours (real)": "n/a",
        "baseline reads / ours (dry)": round((baseline - r["actions"]) / dry_total, 1),
        "dry s (Prefect)": round(r["dry_seconds_prefect"], 2),
        "dry s (plain)": round(r["dry_seconds_plain"], 2),
        "Prefect share dry": share(r["dry_seconds_prefect"], r["dry_seconds_plain"]),
        "real s (Prefect)": "n/a", "real s (plain)": "n/a", "Prefect share real": "n/a",
    }
    if "real_requests" in r:
        real_total = sum(r["real_requests"].values())
        safety = r["real_requests"].get(DETAIL, 0)
        row.update({
            "real requests": real_total,
            "real ratio": round(real_total / real_bound, 2),
            "real ratio w/o safety read": round((real_total - safety) / real_bound, 2),
            # What cannot be avoided: the dry run's reads and two writes (action, note) each.
            "real / (dry + 2 per action)": round(real_total / (dry_total + 2 * r["actions"]), 3),
            "safety read max age s": r.get("max_read_age", "n/a"),
            "baseline / ours (real)": round(baseline / real_total, 1),
            "real s (Prefect)": round(r["real_seconds_prefect"], 2),
            "real s (plain)": round(r["real_seconds_plain"], 2),
            "Prefect share real": share(r["real_seconds_prefect"], r["real_seconds_plain"]),
        })
    write = r.get("write_path")
    if write:
        plain, through = write["plain"], write["prefect"]
        ps, ts = plain["summary"], through["summary"]
        row.update({
            "write path s (plain)": round(plain["seconds"], 2),
            "write path s (Prefect: flow / apply)":
                f"{through['seconds']:.2f} / {through['seconds_apply']:.2f}",
            "Prefect share write path": share(through["seconds"], plain["seconds"]),
            "residual window ms p50/p95/max": (f"{ps['window_p50_ms']} / {ps['window_p95_ms']} / "
                                               f"{ps['window_max_ms']}"),
            "residual window ms, Prefect": (f"{ts['window_p50_ms']} / {ts['window_p95_ms']} / "
                                            f"{ts['window_max_ms']}"),
            "ms per action / floor": (f"{ps['per_action_ms']} / {ps['floor_ms']} = "
                                      f"{ps['per_action_over_floor']}x"),
            "requests per action": ps["requests_per_action"],
            "ledger ms per decision": ps["ledger_ms_per_decision"],
            "audit requests per chunk": ps["audit_requests_per_chunk"],
        })
    return row


def print_details(r: dict[str, Any]) -> None:
    say(f"\n## {r['playbook']}: {r['actions']} actions planned")
    say(f"  dry runs at latency, s: Prefect {r['dry_seconds_prefect_all']}, "
        f"plain {r['dry_seconds_plain_all']} (medians in the table)")
    if "real_requests" in r:
        say(f"  real-run outcomes: Prefect {r['real_counts_prefect']}, "
            f"plain {r['real_counts_plain']}")
    for label, counts in (("dry run", r["dry_requests"]),
                          ("real run", r.get("real_requests")),
                          ("notebook baseline", r["baseline_requests"])):
        if counts is None:
            continue
        say(f"  {label} requests by endpoint ({sum(counts.values())}):")
        for key, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            say(f"    {n:>7}  {key}")
    for label, bound in (("dry", r["dry_bound"]), ("real", r["real_bound"])):
        say(f"  lower bound, {label} ({sum(bound.values())}): "
            + ", ".join(f"{k} {v}" for k, v in bound.items()))
    for label, run in (r.get("write_path") or {}).items():
        s = run["summary"]
        say(f"  write path alone ({label}): {run['decisions']} decisions in {run['chunks']} "
            f"chunks, {run['seconds']:.2f} s (apply_plan {run['seconds_apply']:.2f} s); "
            f"outcomes {run['counts']}; detection: {run['detection']}")
        say(f"    residual window (end of safety read -> end of write), {s['windows']} writes: "
            f"p50 {s['window_p50_ms']} ms, p95 {s['window_p95_ms']} ms, "
            f"max {s['window_max_ms']} ms")
        say(f"    per action {s['per_action_ms']} ms against a floor of {s['floor_ms']} ms "
            f"({s['requests_per_action']} requests x latency / writers): "
            f"{s['per_action_over_floor']}x; mean call: safety read "
            f"{1000 * run['safety_read_s_mean']:.1f} ms, write {1000 * run['write_s_mean']:.1f} "
            f"ms, note {1000 * run['note_s_mean']:.1f} ms")
        say(f"    ledger per decision {s['ledger_ms_per_decision']} ms "
            f"({', '.join(f'{k} {v}' for k, v in s['ledger_ms_by_step'].items())}; p95 of one: "
            + ", ".join(f"{k} {1000 * v:.1f}" for k, v in run["ledger_op_p95_s"].items())
            + f"); lease taken in {1000 * run['lease_s']:.1f} ms, plan recorded in "
            f"{1000 * run['plan_record_s']:.0f} ms")
        say(f"    after-write audit-log reads: {s['audit_requests_per_chunk']} requests per chunk, "
            f"{s['audit_ms_per_chunk']} ms per chunk")
        say("    requests: " + ", ".join(f"{k} {v}" for k, v in
                                       sorted(run["requests"].items(), key=lambda kv: -kv[1])))


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    width = max(len(k) for k in keys)
    say("\n" + "figure".ljust(width) + "".join(f" | {r['playbook'][:30]:>30}" for r in rows))
    for key in keys[1:]:
        say(key.ljust(width) + "".join(f" | {str(r[key]):>30}" for r in rows))


def main(argv: list[str] | None = None) -> int:
    parser = common.parser("benchmarks.playbooks", __doc__, incidents=10_000, seed=7)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--playbooks", nargs="+", default=[p[0] for p in PLAYBOOKS],
                        choices=[p[0] for p in PLAYBOOKS])
    parser.add_argument("--repeat", type=int, default=3,
                        help="dry runs with and without Prefect, each (median; default 3)")
    parser.add_argument("--real", nargs="+", default=["flow", "write"], choices=["flow", "write"],
                        help="real runs to make: whole flows with and without Prefect ('flow'), "
                        "the write path alone, plain and through Prefect ('write'); default both")
    parser.add_argument("--writers", type=int, default=4,
                        help="the write path's threads ('write' runs; the flows use 4)")
    parser.add_argument("--chunk-size", type=int, default=100,
                        help="decisions per chunk ('write' runs; the flows use "
                        "tasks.act.CHUNK, 100)")
    args = parser.parse_args(argv)

    import sandbox

    started = time.perf_counter()
    workspace = sandbox.build_workspace(args.seed, args.incidents, None)
    say(
        f"workspace: seed {args.seed}, {args.incidents} incidents, generated in "
        f"{time.perf_counter() - started:.1f} s"
    )
    results = []
    with common.running_exported(workspace, "gg-bench-playbooks-") as (box, folder):
        initial = pickle.dumps(box.state())
        # Prefect's first flow run starts its local API: a one-time cost, timed apart.
        from flows.departed_developers import departed_developers

        fresh_ledger(folder, "warm-up")
        _, warm = run_flow(
            departed_developers, prefect=True, dry_run=True, max_actions=0
        )
        say(
            f"Prefect warm-up: the process's first flow run (local API start + one dry run of "
            f"the departed playbook, no latency): {warm:.1f} s"
        )
        for spec in PLAYBOOKS:
            if spec[0] in args.playbooks:
                say(f"running {spec[0]}...")
                try:
                    result = bench_playbook(
                        box,
                        initial,
                        spec,
                        folder,
                        args.latency_ms,
                        max(1, args.repeat),
                        tuple(args.real),
                        args.writers,
                        args.chunk_size,
                    )
                except ImportError as exc:  # a playbook being changed in the tree: say so
                    say(f"  skipped: cannot import it ({exc})")
                    continue
                print_details(result)
                results.append(result)
    rows = [summarise(r) for r in results]
    say(
        f"\nPlaybooks on {args.incidents} incidents (seed {args.seed}), "
        f"wall times at {args.latency_ms} ms latency per request:"
    )
    print_table(rows)
    common.write_json(args.json, {"rows": rows, "details": results, "warm_up_s": warm,
                                  "incidents": args.incidents, "latency_ms": args.latency_ms,
                                  "writers": args.writers})
    return 0


if __name__ == "__main__":
    sys.exit(main())
