"""The event path's benchmark: create -> assigned latency and the API requests each event's runs
made, over the event path with real parts (deployments/event_path.py: the sandbox's signed
webhooks -> the receiver -> a Prefect server's automations -> `deployments.serve`'s runs).

    python -m benchmarks.event_path --events 50     # create -> assigned latency, requests/event
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from deployments.event_path import EventPath, settle, triage_examples
from deployments.processes import start_prefect_server, stop, wait_until

# ----------------------------------------------------------------------------- benchmark


def benchmark(events: int, seed: int, incidents: int, window: float) -> dict[str, Any]:
    from sandbox.export import export
    from sandbox.generator import generate
    from tasks.decide.identity import normalise_email

    workdir = Path(tempfile.mkdtemp(prefix="gg-event-bench-"))
    workspace = generate(seed, incidents)
    export(workspace, workdir / "export")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_HOME=str(workdir / "prefect-home"), PREFECT_UI_ENABLED="false",
               PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false", PYTHONUNBUFFERED="1")
    token = "bench-" + os.urandom(12).hex()
    server, api = start_prefect_server(workdir, env, workdir / "server.log")
    try:
        path = EventPath(api, env, workdir, workspace, workdir / "export", token, window=window)
        examples = triage_examples(workspace)
        with path.running():
            latencies, requests_per_event = [], []
            for n in range(events):
                template, email = examples[n % len(examples)]
                before = path.counter.count
                started = time.monotonic()
                created = path.leak_like(template)

                def assigned(created: dict = created, email: str = email) -> bool:
                    current = path.box.store.incidents[created["id"]]
                    return normalise_email(current.get("assignee_email") or "") == email

                wait_until(assigned, timeout=120, interval=0.05,
                           what=f"incident {created['id']} assigned")
                latencies.append(time.monotonic() - started)
                print(f"  event {n + 1}: incident {created['id']} assigned after "
                      f"{latencies[-1]:.1f} s", flush=True)
                # Let the run this event started end (its after-write audit check; departed, were
                # the `assigned` webhook not our own write coming back) before counting what it
                # cost and making the next one.
                settle(path)
                requests_per_event.append(path.counter.count - before)
                print(f"    its runs made {requests_per_event[-1]} API requests", flush=True)
            runs = Counter(r.name.split(" ·")[0] for r in path.flow_runs())
    finally:
        stop(server)
    cuts = statistics.quantiles(latencies, n=20)
    return {"events": events, "window_s": window,
            "latency_p50_s": statistics.median(latencies), "latency_p95_s": cuts[18],
            "latency_max_s": max(latencies),
            "requests_per_event_mean": statistics.mean(requests_per_event),
            "requests_per_event_max": max(requests_per_event),
            # The first event finds the member list's cache empty (serve cached the token's
            # description when it started).
            "requests_first_event": requests_per_event[0],
            "requests_after_first_max": max(requests_per_event[1:], default=0),
            "requests_per_event": dict(sorted(Counter(requests_per_event).items())),
            "flow_runs": dict(runs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.event_path",
                                     description="create -> assigned latency over the event path")
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--window", type=float, default=1.0,
                        help="the receiver's coalescing window in seconds")
    args = parser.parse_args(argv)
    result = benchmark(args.events, args.seed, args.incidents, args.window)
    print(f"event path, {result['events']} single-incident events, window {args.window:g} s")
    print(f"  create -> assigned: p50 {result['latency_p50_s']:.2f} s, "
          f"p95 {result['latency_p95_s']:.2f} s, max {result['latency_max_s']:.2f} s")
    print(f"  API requests per event (every run it started): mean "
          f"{result['requests_per_event_mean']:.2f}, max {result['requests_per_event_max']}; "
          f"first event {result['requests_first_event']} (the member list not cached yet; "
          f"the token's description cached by serve at its start), "
          f"the others at most {result['requests_after_first_max']}; "
          f"events by requests {result['requests_per_event']}")
    print(f"  flow runs: {result['flow_runs']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
