"""Rate-limit sweep: how close a long listing gets to the per-key limit. Prints; asserts nothing.

    .venv/bin/python -m benchmarks.ratelimit_sweep                  # 10k incidents, 1000/min
    .venv/bin/python -m benchmarks.ratelimit_sweep --rpm 600 --sweep incidents

The sandbox enforces `--rpm` requests per minute per token (fixed window, 429 with
Retry-After beyond it) and the client's own limiter is set to the same figure, as an operator
would set GITGUARDIAN_REQUESTS_PER_MINUTE. The sweep lists every incident and then every open
incident's occurrences (about 100 + 200 pages for 10k incidents, under 60 s at 1000/min).
The ideal time is requests / limit; the goal is within 1.1x of it, without a single 429.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sweep(client: Any, what: str) -> int:
    """List page by page; returns the items seen."""
    seen = 0
    if what in ("incidents", "both"):
        for page in client.incidents(per_page=100).pages():
            seen += len(page)
    if what in ("occurrences", "both"):
        for status in ("TRIGGERED", "ASSIGNED"):
            for page in client.occurrences(per_page=100, status=status).pages():
                seen += len(page)
    return seen


def measure(box: Any, rpm: int, what: str) -> dict[str, Any]:
    import requests

    from clients.gitguardian import GitGuardianClient

    box.set_adversity(rate_limit=rpm)
    refused: list[int] = []
    session = requests.Session()
    # Count the sandbox's 429 answers as they arrive (the client retries them after Retry-After).
    session.hooks["response"].append(
        lambda response, *a, **k: refused.append(1) if response.status_code == 429 else None)
    client = GitGuardianClient(box.url, box.token, requests_per_minute=rpm, session=session)
    started = time.perf_counter()
    items = sweep(client, what)
    elapsed = time.perf_counter() - started
    box.set_adversity()
    requests_sent = client.requests_total
    # The same sweep with no limit at all: the time the work itself takes on this machine.
    unlimited = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    started = time.perf_counter()
    sweep(unlimited, what)
    unlimited_seconds = time.perf_counter() - started
    ideal = requests_sent / rpm * 60
    return {
        "sweep": what, "items": items, "requests": requests_sent, "rpm": rpm,
        "seconds": round(elapsed, 2), "ideal_seconds": round(ideal, 2),
        "ratio": round(elapsed / ideal, 3) if ideal else None,
        "unlimited_seconds": round(unlimited_seconds, 2),
        "429s": len(refused),
    }


def main(argv: list[str] | None = None) -> int:
    parser = common.parser("benchmarks.ratelimit_sweep", __doc__, incidents=10_000, seed=7)
    parser.add_argument("--rpm", type=int, default=1000)
    parser.add_argument("--sweep", choices=["incidents", "occurrences", "both"], default="both")
    args = parser.parse_args(argv)

    import sandbox

    with sandbox.running(seed=args.seed, incidents=args.incidents) as box:
        result = measure(box, args.rpm, args.sweep)
    result["incidents"] = args.incidents
    print(f"rate-limit sweep on {args.incidents} incidents at {args.rpm} requests/min "
          f"(sandbox limit = client limiter): {result['requests']} requests, {result['items']} "
          f"items in {result['seconds']} s; requests/limit = {result['ideal_seconds']} s; "
          f"ratio {result['ratio']} (goal <= 1.1); the same sweep with no limit: "
          f"{result['unlimited_seconds']} s; "
          f"429 answers: {result['429s']}", flush=True)
    common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
