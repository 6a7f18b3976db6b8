"""Every benchmark, one after the other, then one table with the machine's details.

    .venv/bin/python -m benchmarks                       # the issue's sizes, about 10 minutes
    .venv/bin/python -m benchmarks --incidents 2000 --skip generation weekly   # a quick look
    .venv/bin/python -m benchmarks --markdown out.md     # also write the table as Markdown

Each script runs in its own process (a fresh Prefect, fresh memory figures) and prints its
details; the figures are read back from its --json file (ours) or its output (the generation
and weekly-report scripts). Nothing is asserted: compare against the goals in the table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AREAS = ("playbooks", "ratelimit", "ldap", "generation", "weekly")


def say(text: str = "") -> None:
    print(text, flush=True)


def machine() -> dict[str, str]:
    model = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        import prefect

        prefect_version = prefect.__version__
    except ImportError:
        prefect_version = "not installed"
    return {
        "CPUs": str(os.cpu_count()),
        "CPU model": model,
        "memory": memory,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "Prefect": prefect_version,
        "load average at start (1/5/15 min)": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def run(module: str, args: list[str], log: Path) -> tuple[str, float, int]:
    """Run `python -m module args`, echoing its output; (output, seconds, exit code)."""
    say(f"\n$ python -m {module} {' '.join(args)}")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    log.write_text(done.stdout)
    say(done.stdout.rstrip())
    if done.returncode:
        say(f"(exit code {done.returncode})")
    return done.stdout, seconds, done.returncode


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _found(pattern: str, text: str) -> str | None:
    match = re.search(pattern, text)
    return match.group(1) if match else None


def rows_playbooks(data: Any) -> list[list[str]]:
    rows = []
    for r in (data or {}).get("rows", []):
        name = r["playbook"]
        rows += [
            [name, "actions planned", str(r["actions"]), ""],
            [
                name,
                "requests, dry run / lower bound",
                f"{r['dry requests']} / {r['dry bound']} = {r['dry ratio']}",
                "<= 1.1",
            ],
            [
                name,
                "requests, real run / lower bound",
                f"{r['real requests']} / {r['real bound']} = "
                f"{r['real ratio']} ({r['real ratio w/o safety read']} without the safety read)",
                "<= 1.1",
            ],
            [
                name,
                "notebook baseline requests (its / ours, real run)",
                f"{r['baseline requests']} ({r['baseline / ours (real)']}x; reads only: "
                f"{r['baseline reads / ours (dry)']}x)",
                ">= 20x",
            ],
            [
                name,
                "wall time at 20 ms latency, dry run (without Prefect)",
                f"{r['dry s (Prefect)']} s ({r['dry s (plain)']} s)",
                "",
            ],
            [name, "Prefect share of wall time, dry run", r["Prefect share dry"], "< 10%"],
            [
                name,
                "wall time at 20 ms latency, real run (without Prefect)",
                f"{r['real s (Prefect)']} s ({r['real s (plain)']} s)",
                "",
            ],
            [name, "Prefect share of wall time, real run", r["Prefect share real"], "< 10%"],
        ]
        if "write path s (plain)" in r:
            rows += [
                [
                    name,
                    "write path alone at 20 ms, 4 writers (through Prefect: flow / apply)",
                    f"{r['write path s (plain)']} s "
                    f"({r['write path s (Prefect: flow / apply)']} s)",
                    "",
                ],
                [name, "Prefect share of the write path", r["Prefect share write path"], ""],
                [
                    name,
                    "residual window, safety read to write, ms p50 / p95 / max",
                    r["residual window ms p50/p95/max"],
                    "",
                ],
                [
                    name,
                    "ms per action / floor (requests x latency / writers)",
                    r["ms per action / floor"],
                    "",
                ],
                [
                    name,
                    "ledger ms per decision (claim + intent + result, SQLite)",
                    str(r["ledger ms per decision"]),
                    "",
                ],
                [
                    name,
                    "after-write audit-log requests per chunk",
                    str(r["audit requests per chunk"]),
                    "",
                ],
            ]
    if data and "warm_up_s" in data:
        rows.append(
            [
                "Prefect",
                "first flow run of a process (local API start + a dry run)",
                f"{data['warm_up_s']:.1f} s",
                "",
            ]
        )
    return rows


def rows_ratelimit(data: Any) -> list[list[str]]:
    if not data:
        return []
    return [
        [
            "rate limit",
            f"sweep of {data['incidents']} incidents at {data['rpm']}/min",
            f"{data['seconds']} s for {data['requests']} requests; requests/limit "
            f"{data['ideal_seconds']} s; ratio {data['ratio']}; 429s {data['429s']}; "
            f"unlimited {data['unlimited_seconds']} s",
            "ratio <= 1.1",
        ]
    ]


def rows_ldap(data: Any) -> list[list[str]]:
    if not data:
        return []
    return [
        [
            "LDAP",
            f"searches for {data['addresses']} addresses (real slapd)",
            f"{data['lookup_searches']} ({data['lookup_seconds']} s; manager chains of "
            f"{data['departed']} departed: +{data['manager_chain_searches']})",
            "<= 12",
        ]
    ]


def rows_generation(text: str) -> list[list[str]]:
    rows = []
    for size, wall, cpu in re.findall(
        r"(\d+) incidents:\s+([\d.]+) s wall,\s+([\d.]+) s CPU", text
    ):
        rows.append(
            ["sandbox", f"generate {size} incidents", f"{wall} s wall, {cpu} s CPU", "100k < 60 s"]
        )
    return rows


def rows_weekly(text: str) -> list[list[str]]:
    count = _found(r"incidents: (\d+);", text) or "?"
    compute = _found(r"compute [^:]*: ([\d.]+ s wall, [\d.]+ s CPU)", text)
    rss = _found(r"peak RSS: (\d+ MiB)", text)
    total = re.search(r"^total\s+(\d+)\s+(\d+)", text, re.M)
    rows = []
    if compute:
        rows.append(["weekly report", f"compute for {count} incidents", compute, "< 10 s"])
    if rss:
        rows.append(["weekly report", "peak memory", rss, "< 1 GiB"])
    if total:
        rows.append(
            [
                "weekly report",
                "requests / lower bound (sandbox)",
                f"{total.group(1)} / {total.group(2)}",
                "",
            ]
        )
    return rows


def render(rows: list[list[str]], details: dict[str, str]) -> str:
    lines = ["| area | figure | measured | goal |", "|---|---|---|---|"]
    lines += [f"| {' | '.join(cell.replace('|', '/') for cell in row)} |" for row in rows]
    lines += ["", "| machine | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in details.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--incidents",
        type=int,
        default=10_000,
        help="workspace size for the playbooks and the rate-limit sweep",
    )
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--rpm", type=int, default=1000)
    parser.add_argument("--addresses", type=int, default=1000)
    parser.add_argument("--generation-sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--weekly-incidents", type=int, default=100_000)
    parser.add_argument("--skip", nargs="+", default=[], choices=AREAS)
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    args = parser.parse_args(argv)

    details = machine()
    started = time.perf_counter()
    say(f"Benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    for key, value in details.items():
        say(f"  {key}: {value}")
    work = Path(tempfile.mkdtemp(prefix="gg-benchmarks-"))
    rows: list[list[str]] = []
    n = str(args.incidents)
    # (area, script, its arguments, its table rows): the first three write --json figures, the
    # generation and weekly-report scripts print theirs.
    figures = [
        ("playbooks", "benchmarks.playbooks",
         ["--incidents", n, "--latency-ms", str(args.latency_ms)], rows_playbooks),
        ("ratelimit", "benchmarks.ratelimit_sweep", ["--incidents", n, "--rpm", str(args.rpm)],
         rows_ratelimit),
        ("ldap", "benchmarks.ldap_searches", ["--addresses", str(args.addresses)], rows_ldap),
    ]
    printed = [
        ("generation", "benchmarks.sandbox_generation",
         ["--sizes", *map(str, args.generation_sizes)], rows_generation),
        ("weekly", "benchmarks.weekly_report", ["--incidents", str(args.weekly_incidents)],
         rows_weekly),
    ]
    for area, module, arguments, rows_of in figures:
        if area not in args.skip:
            out = work / f"{area}.json"
            run(module, [*arguments, "--json", str(out)], work / f"{area}.log")
            rows += rows_of(_json(out))
    for area, module, arguments, rows_of in printed:
        if area not in args.skip:
            text, _, _ = run(module, arguments, work / f"{area}.log")
            rows += rows_of(text)

    details["load average at end (1/5/15 min)"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    details["total benchmark time"] = f"{time.perf_counter() - started:.0f} s"
    table = render(rows, details)
    say("\n" + table)
    say(f"\n(logs of each script in {work})")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
