"""Prints how long the sandbox generator takes for 10k and 100k incidents (and what it made).

    .venv/bin/python benchmarks/sandbox_generation.py [--sizes 10000 100000] [--seed 7]

A script, not a test: the issue's target is 100k incidents in under a minute.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.generator import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for size in args.sizes:
        started, cpu_started = time.perf_counter(), time.process_time()
        workspace = generate(args.seed, size)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        commits = sum(len(r.commits) for r in workspace.repositories)
        truth = {name: len(part["actions"]) for name, part in workspace.ground_truth.items()}
        # CPU time too: on a shared machine the wall time also measures the neighbours
        print(f"{size:>7} incidents: {elapsed:6.1f} s wall, {cpu:6.1f} s CPU  "
              f"({len(workspace.occurrences)} occurrences, {commits} commits, "
              f"{len(workspace.people)} people, "
              f"{len(workspace.members)} members, {len(workspace.sources)} sources; "
              f"ground truth actions {truth})", flush=True)


if __name__ == "__main__":
    main()
