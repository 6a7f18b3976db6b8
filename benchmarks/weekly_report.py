"""Weekly report benchmark: compute time and peak memory for many incidents, and API requests
against their lower bound on a sandbox run. Prints figures; asserts nothing.

    .venv/bin/python -m benchmarks.weekly_report                 # 100k synthetic incidents
    .venv/bin/python -m benchmarks.weekly_report --incidents 20000 --sandbox-incidents 3000

Goal (issue 6): under 10 s and 1 GiB for 100k incidents on a 2-core machine.
"""
from __future__ import annotations

import argparse
import math
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta

from benchmarks import common

common.quiet_prefect()

SEVERITIES = ["critical", "high", "medium", "low", "info", "unknown"]
VALIDITIES = ["valid", "invalid", "failed_to_check", "no_checker", "unknown"]
REASONS = ["test_credential", "false_positive", "low_risk", "invalid"]
DETECTORS = [f"Detector {n}" for n in range(60)]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def synthetic_incidents(count: int, now: datetime, seed: int = 7) -> list[dict]:
    """API-shaped incidents over the last two years: about a third open, as in real workspaces."""
    rng = random.Random(seed)
    incidents = []
    for n in range(1, count + 1):
        opened = now - timedelta(seconds=rng.randint(0, 730 * 86400))
        status = rng.choices(["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"], [15, 20, 45, 20])[0]
        closed = min(now, opened + timedelta(seconds=rng.expovariate(1 / (20 * 86400))))
        incidents.append(
            {
                "id": n,
                "date": _iso(opened),
                "status": status,
                "severity": rng.choice(SEVERITIES),
                "validity": rng.choice(VALIDITIES),
                "detector": {"name": "d", "display_name": rng.choice(DETECTORS)},
                "resolved_at": _iso(closed) if status == "RESOLVED" else None,
                "ignored_at": _iso(closed) if status == "IGNORED" else None,
                "ignore_reason": rng.choice(REASONS) if status == "IGNORED" else None,
                "secret_revoked": rng.random() < 0.5 if status == "RESOLVED" else None,
                "assignee_id": rng.randint(1, 300) if status != "TRIGGERED" else None,
                "assignee_email": f"person.{rng.randint(1, 300)}@corp.example"
                if status != "TRIGGERED"
                else None,
                "tags": ["PUBLICLY_EXPOSED"] if rng.random() < 0.05 else [],
                "incident_name": "synthetic",
                "occurrences_count": 1,
            }
        )
    return incidents


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def compute_benchmark(count: int, render: bool) -> None:
    from clients.models import Incident
    from tasks import weekly_report
    from tasks.report import frames, kpis

    now = datetime(2026, 11, 23, tzinfo=UTC)
    window = frames.last_complete_week(now)
    raw = synthetic_incidents(count, now)
    started = time.perf_counter()
    models = [Incident.model_validate(i) for i in raw]
    parsed = time.perf_counter() - started
    del raw
    before_rss = _rss_mib()

    started, cpu = time.perf_counter(), time.process_time()
    frame = frames.incidents_frame(models)
    weekly = kpis.compute(frame, window, trend_weeks=12, token_id="bench")
    computed, computed_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"incidents: {count}; week {window.label}; backlog {weekly.kpis['backlog']['value']}")
    print(f"parse into models: {parsed:.2f} s (the client does this while fetching)")
    # CPU time too: on a shared machine the wall clock also counts other processes' turns.
    print(
        f"compute (frame + every KPI + 12-week trends): {computed:.2f} s wall, "
        f"{computed_cpu:.2f} s CPU"
    )
    if render:
        started, cpu = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory() as folder:
            weekly_report.write_files(weekly, folder)
        print(
            "render (md, html with 4 charts, csv, json): "
            f"{time.perf_counter() - started:.2f} s wall, "
            f"{time.process_time() - cpu:.2f} s CPU"
        )
    print(
        f"peak RSS: {_rss_mib():.0f} MiB "
        f"(with the models held: {before_rss:.0f} MiB before computing)"
    )


def requests_benchmark(incidents: int) -> None:
    import sandbox
    from clients.gitguardian import GitGuardianClient
    from flows import weekly_report as flow_module
    from tasks import weekly_report as report_tasks
    from tasks.report import frames

    with sandbox.running(seed=7, incidents=incidents) as box:
        window = frames.last_complete_week(box.workspace.now)
        trend_start = frames.trend_windows(window, 12)[0].start.to_pydatetime()
        since, end = window.previous().start.to_pydatetime(), window.end.to_pydatetime()
        # no client-side limit: the history alone would take minutes at 200 a minute
        client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
        client.token_info()
        found = report_tasks.fetch_report_incidents.fn(client, trend_start)
        members = report_tasks.fetch_report_members.fn(client)
        occurrences = report_tasks.fetch_report_occurrences.fn(client, since, end)
        audit = report_tasks.fetch_audit_log.fn(client, since, end) or []
        started = time.perf_counter()
        history = report_tasks.fetch_report_history.fn(
            client, found, trend_start, end, flow_module.DEFAULT_HISTORY_BUDGET
        )
        history_seconds = time.perf_counter() - started
        counts = dict(client.request_counts)

        state = box.state()

        def moment(text):
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

        def needed(i):
            closed = (
                i.get("resolved_at")
                if i["status"] == "RESOLVED"
                else i.get("ignored_at")
                if i["status"] == "IGNORED"
                else None
            )
            return (
                i["status"] in ("TRIGGERED", "ASSIGNED")
                or (moment(i.get("date")) or since) >= trend_start
                or (closed is not None and moment(closed) >= trend_start)
            )

        n_needed = sum(1 for i in state["incidents"].values() if needed(i))
        bounds = {
            "GET /v1/api_tokens/self": 1,
            "GET /v1/incidents/secrets": math.ceil(n_needed / 100),
            "GET /v1/members": max(1, math.ceil(len(members) / 100)),
            "GET /v1/occurrences/secrets": max(1, math.ceil(len(occurrences) / 100)),
            "GET /v1/audit_logs": max(1, math.ceil(len(audit) / 100)),
            # one request per log the history needs (within the budget)
            report_tasks.ACTIVITY_LOGS: len(history["candidates"].ids),
        }
        print(
            f"sandbox: {incidents} incidents in the workspace, {n_needed} needed by the report, "
            f"{len(found)} read"
        )
        chosen = history["candidates"]
        print(
            f"history: {chosen.total} incidents whose past can change the figures "
            f"({', '.join(f'{t}: {n}' for t, (n, _) in chosen.by_tier.items())}); budget "
            f"{chosen.budget}, {len(history['logs'])} logs read in {history_seconds:.1f} s "
            f"(no latency), {history['requests'] / 200:.1f} min at 200 requests/min"
        )
        print(f"{'endpoint':45} {'requests':>8} {'lower bound':>12}")
        for endpoint, bound in bounds.items():
            print(f"{endpoint:45} {counts.get(endpoint, 0):>8} {bound:>12}")
        print(f"{'total':45} {sum(counts.values()):>8} {sum(bounds.values()):>12}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--no-render", action="store_true", help="time the KPIs only")
    parser.add_argument(
        "--sandbox-incidents",
        type=int,
        default=2000,
        help="workspace size for the request count (0: skip)",
    )
    args = parser.parse_args()
    compute_benchmark(args.incidents, render=not args.no_render)
    if args.sandbox_incidents:
        requests_benchmark(args.sandbox_incidents)


if __name__ == "__main__":
    main()
