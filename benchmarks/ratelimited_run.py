"""A real playbook run at the per-key rate limit: wall time against requests / limit. Prints.

    .venv/bin/python -m benchmarks.ratelimited_run                     # triage, 1000/min
    .venv/bin/python -m benchmarks.ratelimited_run --rpm 600 --playbook test-directory-auto-ignore

The sandbox enforces `--rpm` requests per minute per token (fixed window, 429 with Retry-After
beyond it) and the flows' client is configured as an operator would, with
GITGUARDIAN_REQUESTS_PER_MINUTE set to the same figure. The whole flow body runs for real
(reads, batched safety reads, writes, notes, the after-write audit-log check) in
`tasks.runtime.plain()` (Prefect's own cost is measured by benchmarks/fixed_cost.py). The
ideal time is requests / limit; the goal is within 1.05x of it, with no 429 answer.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(box: Any, folder: Path, spec: tuple[str, ...], rpm: int) -> dict[str, Any]:
    import importlib

    import requests

    from benchmarks.playbooks import fresh_ledger, run_flow

    name, flow_module, flow_attr, policy_module, policy_attr = spec
    flow_fn = getattr(importlib.import_module(flow_module), flow_attr)
    policy = getattr(importlib.import_module(policy_module), policy_attr)()
    refused: list[int] = []
    original = requests.Session.request

    def counting(session: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(session, *args, **kwargs)
        if response.status_code == 429:
            refused.append(1)
        return response

    fresh_ledger(folder, f"{name}-ratelimited")
    os.environ["GITGUARDIAN_REQUESTS_PER_MINUTE"] = str(rpm)
    box.set_adversity(rate_limit=rpm)
    requests.Session.request = counting  # counts the sandbox's 429s; the client retries them
    try:
        started = time.perf_counter()
        data, _ = run_flow(flow_fn, prefect=False, policy=policy, dry_run=False,
                           max_actions=1_000_000)
        seconds = time.perf_counter() - started
    finally:
        requests.Session.request = original
        box.set_adversity()
        os.environ["GITGUARDIAN_REQUESTS_PER_MINUTE"] = "0"
    sent = sum(data["requests"].values())
    ideal = sent / rpm * 60
    return {
        "playbook": name, "rpm": rpm, "actions": len(data["plan"]), "requests": sent,
        "seconds": round(seconds, 2), "ideal_seconds": round(ideal, 2),
        "ratio": round(seconds / ideal, 3) if ideal else None, "429s": len(refused),
        "counts": data.get("counts"),
    }


def main(argv: list[str] | None = None) -> int:
    from benchmarks.playbooks import PLAYBOOKS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.ratelimited_run",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--rpm", type=int, default=1000)
    parser.add_argument("--playbook", default="commit-author-triage",
                        choices=[p[0] for p in PLAYBOOKS])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    import sandbox
    from flows.demo import _environment
    from sandbox.export import export

    folder = Path(tempfile.mkdtemp(prefix="gg-bench-ratelimited-"))
    workspace = sandbox.build_workspace(args.seed, args.incidents, None)
    export(workspace, folder)
    spec = next(p for p in PLAYBOOKS if p[0] == args.playbook)
    with sandbox.running(workspace=workspace) as box:
        _environment(box, folder)
        result = measure(box, folder, spec, args.rpm)
    result["incidents"] = args.incidents
    result["seed"] = args.seed
    print(f"{result['playbook']}, real run on {args.incidents} incidents (seed {args.seed}) at "
          f"{args.rpm} requests/min (sandbox limit = client limiter): {result['actions']} "
          f"actions, {result['requests']} requests in {result['seconds']} s; requests/limit = "
          f"{result['ideal_seconds']} s; ratio {result['ratio']} (goal <= 1.05); "
          f"429 answers: {result['429s']}; outcomes {result['counts']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
