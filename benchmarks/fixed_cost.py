"""Prefect's fixed cost per flow run: the same work with and without Prefect. Prints.

    .venv/bin/python -m benchmarks.fixed_cost                  # 300 incidents, median of 5
    .venv/bin/python -m benchmarks.fixed_cost --repeat 9 --incidents 1000

Measured in one process, after a warm-up run (the local API's start is a one-time cost):
- an empty flow (`@flow def nothing(): pass`): what any flow run costs here, the floor the
  project cannot go under (run creation, state transitions, result handling);
- each playbook's dry run (no latency, a fresh ledger each time): through Prefect, and the same
  flow body in `tasks.runtime.plain()`; the difference is Prefect's share (the empty flow's
  cost plus task runs, artifacts and logs); with and without the flow-run heartbeat thread
  (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, which the command line turns off).
The goal is a fixed cost <= 0.5 s per flow run (median).
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def median_seconds(run: Any, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), [round(t, 3) for t in times]


def main(argv: list[str] | None = None) -> int:
    from benchmarks.playbooks import PLAYBOOKS, fresh_ledger, run_flow

    parser = common.parser("benchmarks.fixed_cost", __doc__, incidents=300, seed=31)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    from prefect import flow
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    import sandbox

    @flow(name="nothing")
    def nothing() -> None:
        return None

    workspace = sandbox.build_workspace(args.seed, args.incidents, None)
    figures: dict[str, Any] = {"incidents": args.incidents, "repeat": args.repeat}
    heartbeat_default = PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value()
    figures["heartbeat_default"] = heartbeat_default
    with common.running_exported(workspace, "gg-bench-fixed-cost-") as (_box, folder):
        nothing()  # warm-up: starts the local API
        for label, heartbeat in (("heartbeat off", None), ("heartbeat 30 s", 30)):
            with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: heartbeat}):
                m, all_ = median_seconds(nothing, args.repeat)
            figures[f"empty flow, {label}"] = {"median_s": round(m, 3), "all": all_}
            print(f"empty flow, {label}: median {m:.3f} s {all_}", flush=True)
        for spec in PLAYBOOKS:
            name, flow_fn, policy = common.load_playbook(spec)
            count = [0]

            def once(prefect: bool, name=name, count=count, flow_fn=flow_fn,
                     policy=policy) -> None:
                count[0] += 1
                fresh_ledger(folder, f"{name}-{count[0]}")
                run_flow(flow_fn, prefect=prefect, policy=policy, dry_run=True,
                         max_actions=1_000_000)

            row: dict[str, Any] = {}
            plain, plain_all = median_seconds(lambda: once(False), args.repeat)
            row["plain"] = {"median_s": round(plain, 3), "all": plain_all}
            for label, heartbeat in (("heartbeat off", None), ("heartbeat 30 s", 30)):
                with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: heartbeat}):
                    m, all_ = median_seconds(lambda: once(True), args.repeat)
                row[label] = {"median_s": round(m, 3), "all": all_,
                              "prefect_share_s": round(m - plain, 3)}
            figures[name] = row
            print(f"{name} dry run: plain {plain:.3f} s; through Prefect, heartbeat off "
                  f"{row['heartbeat off']['median_s']:.3f} s (+"
                  f"{row['heartbeat off']['prefect_share_s']:.3f} s), heartbeat 30 s "
                  f"{row['heartbeat 30 s']['median_s']:.3f} s (+"
                  f"{row['heartbeat 30 s']['prefect_share_s']:.3f} s)", flush=True)
    common.write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
