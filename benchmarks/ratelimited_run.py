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

import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(box: Any, folder: Path, spec: tuple[str, ...], rpm: int) -> dict[str, Any]:
    import requests

    from benchmarks.playbooks import fresh_ledger, run_flow

    name, flow_fn, policy = common.load_playbook(spec)
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

    parser = common.parser("benchmarks.ratelimited_run", __doc__, incidents=1500, seed=31)
    parser.add_argument("--rpm", type=int, default=1000)
    parser.add_argument("--playbook", default="commit-author-triage",
                        choices=[p[0] for p in PLAYBOOKS])
    args = parser.parse_args(argv)

    import sandbox

    workspace = sandbox.build_workspace(args.seed, args.incidents, None)
    spec = next(p for p in PLAYBOOKS if p[0] == args.playbook)
    with common.running_exported(workspace, "gg-bench-ratelimited-") as (box, folder):
        result = measure(box, folder, spec, args.rpm)
    result["incidents"] = args.incidents
    result["seed"] = args.seed
    print(f"{result['playbook']}, real run on {args.incidents} incidents (seed {args.seed}) at "
          f"{args.rpm} requests/min (sandbox limit = client limiter): {result['actions']} "
          f"actions, {result['requests']} requests in {result['seconds']} s; requests/limit = "
          f"{result['ideal_seconds']} s; ratio {result['ratio']} (goal <= 1.05); "
          f"429 answers: {result['429s']}; outcomes {result['counts']}", flush=True)
    common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
