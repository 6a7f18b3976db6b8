"""Fault tally: every playbook against the sandbox with adversity on, over many seeds, compared
with a clean run on identical data. Prints a table; asserts nothing.

    .venv/bin/python -m benchmarks.faults                # 20 seeds, 300 incidents
    .venv/bin/python -m benchmarks.faults --seeds 5 --faults 0.2

Adversity per seed: `--faults` server errors (500/502/503), `--resets` connection resets, a
per-token rate limit of `--rate-limit` requests per 1 s window (429 with Retry-After, honoured
for real), `--latency-ms`. A run that ends Failed is run again (up to `--max-runs` in all), as an
operator would. Checked per seed: final statuses/assignees equal the clean run's; no write
twice in the audit log; no note twice; every ledger intent has a result.

The directory is the sandbox's offline export (DIRECTORY_JSON), not slapd; Prefect runs on a
throw-away local test server. The comparison helpers are the stress tests' (tests/stress).
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks import common

common.quiet_prefect("ERROR")

NAMES = ("departed", "auto-ignore", "triage")


def _environment(out: Path) -> None:
    from sandbox.export import environment

    os.environ.update(environment(out), GITGUARDIAN_MAX_RETRIES="6",
                      GITGUARDIAN_RETRY_BACKOFF_CAP="0.02")
    os.environ.pop("LDAP_URL", None)


def _point_at(box, ledger: Path) -> str:
    url = f"sqlite:///{ledger}"
    os.environ.update(GITGUARDIAN_API_URL=box.url, GITGUARDIAN_API_KEY=box.token, LEDGER_URL=url)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.faults",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--incidents", type=int, default=300)
    parser.add_argument("--faults", type=float, default=0.10)
    parser.add_argument("--resets", type=float, default=0.02)
    parser.add_argument("--rate-limit", type=int, default=30)
    parser.add_argument("--latency-ms", type=int, default=3)
    parser.add_argument("--max-runs", type=int, default=3)
    args = parser.parse_args(argv)
    import logging

    # A reset drops the connection on purpose; uvicorn logs each one as an error. A filter,
    # because each sandbox's uvicorn sets this logger's level again when it starts.
    logging.getLogger("uvicorn.error").addFilter(lambda record: record.levelno >= logging.CRITICAL)

    from prefect.testing.utilities import prefect_test_harness

    import sandbox
    from clients.ledger import Ledger
    from sandbox.export import export
    from sandbox.generator import generate
    from tests.fixtures.harness import our_note_lines
    from tests.stress.conftest import count_fates, final_view, new_writes, run_flow

    out = Path(tempfile.mkdtemp(prefix="gg-bench-faults-"))
    workspace = generate(7, args.incidents)
    export(workspace, out)
    _environment(out)
    print(f"# fault tally: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    last_seed = args.first_seed + args.seeds - 1
    print(f"# {args.incidents} incidents, seeds {args.first_seed}..{last_seed}, "
          f"faults {args.faults:.0%}, resets {args.resets:.0%}, rate limit {args.rate_limit}/s, "
          f"latency {args.latency_ms} ms")
    header = (f"{'playbook':<12} {'seeds':>5} {'equal':>5} {'dup writes':>10} {'dup notes':>9} "
              f"{'lost':>4} {'unfinished':>10} {'runs 1/2/3+':>12} {'429s':>5} {'5xx':>5} "
              f"{'resets':>6} {'s/seed':>7}")
    with prefect_test_harness(server_startup_timeout=120):
        print(header)
        for name in NAMES:
            with sandbox.running(workspace=copy.deepcopy(workspace)) as box:
                _point_at(box, out / f"clean-{name}.sqlite")
                before = box.state()
                state, _ = run_flow(name)
                clean = (before, box.state())
            if not state.is_completed():
                print(f"{name:<12} clean run failed: {state.message}")
                continue
            tally: Counter[str] = Counter()
            fates: Counter = Counter()
            runs_needed: Counter[int] = Counter()
            started = time.monotonic()
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                with sandbox.running(workspace=copy.deepcopy(workspace)) as box:
                    ledger_url = _point_at(box, out / f"{name}-{seed}.sqlite")
                    count_fates(box.set_adversity(rate_limit=args.rate_limit, window_seconds=1.0,
                                                  faults=args.faults, resets=args.resets,
                                                  latency_ms=args.latency_ms, seed=seed), fates)
                    before = box.state()
                    for run in range(1, args.max_runs + 1):  # noqa: B007 (read after the loop)
                        state, _ = run_flow(name)
                        if state.is_completed():
                            break
                    runs_needed[run if state.is_completed() else args.max_runs + 1] += 1
                    box.set_adversity()
                    after = box.state()
                writes = new_writes(before, after)
                notes = our_note_lines(after)
                tally["equal"] += final_view(after) == final_view(clean[1]) and \
                    writes == new_writes(*clean)
                tally["dup writes"] += sum(n - 1 for n in writes.values() if n > 1)
                tally["dup notes"] += sum(n - 1 for n in notes.values() if n > 1)
                tally["lost"] += len(set(our_note_lines(clean[1])) - set(notes))
                tally["unfinished"] += len(Ledger(ledger_url).interrupted())
            per_seed = (time.monotonic() - started) / max(1, args.seeds)
            runs = "/".join(str(runs_needed[n]) for n in (1, 2)) + \
                f"/{sum(v for k, v in runs_needed.items() if k >= 3)}"
            print(f"{name:<12} {args.seeds:>5} {tally['equal']:>5} {tally['dup writes']:>10} "
                  f"{tally['dup notes']:>9} {tally['lost']:>4} {tally['unfinished']:>10} "
                  f"{runs:>12} {fates[429]:>5} {fates[500] + fates[502] + fates[503]:>5} "
                  f"{fates['reset']:>6} {per_seed:>7.1f}", flush=True)
    print("# equal: final state and writes equal the clean run's; lost: notes of the clean run "
          "missing; unfinished: ledger intents without a result; runs: seeds that needed 1, 2, "
          f"3+ runs ({args.max_runs + 1} = never completed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
