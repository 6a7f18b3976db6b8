"""Weekly report: what came in, what was fixed, how fast, what is late, who holds what, and what
the automation did, as files under `reports/<YYYY>-W<WW>/` and Prefect artifacts.

fetch (incidents in a few disjoint passes, members, occurrences of two weeks, audit log,
ledger, the activity logs of the incidents whose history can change the figures) -> compute
(tasks/report/, pure, pandas) -> render (tasks/report/) -> files and artifacts. The tasks are in
tasks/weekly_report.py.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # the command line: checked before Prefect loads (flows/cli.py)
    from flows.report_cli import report_command_line

    sys.exit(report_command_line())

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.utilities.annotations import quote

from flows.report_cli import (
    DEFAULT_HISTORY_BUDGET,
    report_command_line,
    report_parser,
    sla_option,
)
from tasks import notify, preflight, settings
from tasks.errors import one_line_errors
from tasks.notify import ReportDelivery
from tasks.report import frames, kpis, render
from tasks.runtime import run_name
from tasks.sla import DEFAULT_SLA_DAYS
from tasks.weekly_report import (
    compute_report,
    fetch_audit_log,
    fetch_escalations,
    fetch_ledger,
    fetch_report_history,
    fetch_report_incidents,
    fetch_report_members,
    fetch_report_occurrences,
    write_report,
)

FLOW = "weekly-report"
DESCRIPTION = (
    "Write the weekly remediation report (Markdown, HTML with charts, CSV, JSON) and artifacts."
)

def publish_artifacts(
    weekly: kpis.WeeklyReport, files: dict[str, str], generated_at: datetime | None = None
) -> None:
    """What the Prefect UI shows: the headline (with the files' paths to copy: a file:// link
    does not open from a browser's page), the whole report as Markdown with its tables and
    links, and the SLA breaches and automation as tables."""
    week = weekly.window.label.lower()
    shown = {name: Path(path).resolve() for name, path in files.items()}
    create_markdown_artifact(
        key=f"weekly-report-summary-{week}",
        markdown=render.summary_markdown(weekly, generated_at, shown),
        description=f"Weekly report {weekly.window.label}: the headline",
    )
    create_markdown_artifact(
        key=f"weekly-report-{week}",
        markdown=Path(files["report.md"]).read_text(encoding="utf-8"),
        description=f"Weekly report {weekly.window.label}: the whole report "
        "(the HTML file adds the charts)",
    )
    breaches = render.breach_rows(weekly) or [{"result": "no SLA breach"}]
    create_table_artifact(
        key=f"weekly-report-sla-breaches-{week}",
        table=breaches,
        description="Incidents past their SLA at the week's end, or closed late in it",
    )
    automation = weekly.automation.to_dict("records") or [{"result": "no automation recorded"}]
    create_table_artifact(
        key=f"weekly-report-automation-{week}",
        table=automation,
        description="Playbook actions by playbook, action and outcome (with last week's)",
    )


def _window(week: str | None, tz: str, now: datetime | None = None) -> frames.Window:
    if week:
        return frames.parse_week(week, tz)
    return frames.last_complete_week(now or datetime.now(UTC), tz)


@flow(name=FLOW, flow_run_name=run_name, log_prints=True)
@one_line_errors
def weekly_report(
    week: str | None = None,
    timezone_name: str = "UTC",
    sla_days: dict[str, int | None] | None = None,
    output_dir: str = "reports",
    trend_weeks: int = 12,
    history_budget: int = DEFAULT_HISTORY_BUDGET,
    deliver_to: ReportDelivery | None = None,
) -> dict[str, Any]:
    """Write the weekly remediation report (Markdown, HTML with charts, CSV, JSON) and artifacts.

    Args:
        week: ISO week like 2026-W43 (default: the last complete week).
        timezone_name: Where weeks start on Monday 00:00 (an IANA zone, e.g. Europe/Paris).
        sla_days: Days allowed per severity (null: no SLA).
        output_dir: The folder the report's files are written to.
        trend_weeks: How many weeks the trend charts show.
        history_budget: The most incident activity logs read to know past backlogs, closures
            and reopenings (about one request each); 0 reads none and rebuilds them from
            today's data. The report says which it did.
        deliver_to: Prefect notification blocks the summary (headline KPIs and the report's
            path) is sent through, e.g. {"blocks": ["slack-webhook/security-team"]}.
    """
    logger = get_run_logger()
    # The parameters, the settings and the key first: one line naming what to fix.
    token = preflight.check_report(
        week_text=week,
        timezone_name=timezone_name,
        sla=sla_days,
        trend_weeks=trend_weeks,
        output_dir=output_dir,
    )
    window = _window(week, timezone_name)
    sla = dict(DEFAULT_SLA_DAYS if sla_days is None else sla_days)
    # The previous week is always read: every KPI shows its change from it.
    trend_start = frames.trend_windows(window, max(trend_weeks, 2))[0].start.to_pydatetime()
    previous_start = window.previous().start.to_pydatetime()
    end = window.end.to_pydatetime()

    client = settings.gitguardian_client()
    token_id = str(token.id)
    incidents = fetch_report_incidents(client, trend_start)
    members = fetch_report_members(client)
    occurrences = fetch_report_occurrences(client, previous_start, end)
    audit = fetch_audit_log(client, previous_start, end)
    ledger = fetch_ledger(previous_start, end)
    escalations = fetch_escalations()
    history = fetch_report_history(client, quote(incidents), trend_start, end, history_budget)
    logger.info(
        "%d incidents, %d members, %d occurrences, %d activity logs read in %d requests",
        len(incidents),
        len(members),
        len(occurrences),
        len(history["logs"]),
        sum(client.request_counts.values()),
    )

    # quote(): else Prefect walks every model of these inputs, twice, looking for upstream
    # futures (there are none): 9 s on 10k incidents, where the compute takes 0.4 s.
    now = datetime.now(UTC)
    weekly = compute_report(
        quote(incidents),
        quote(members),
        quote(occurrences),
        quote(audit),
        quote(ledger),
        window,
        sla,
        trend_weeks,
        token_id,
        quote(history),
        now,
        quote(escalations),
    )
    files = write_report(quote(weekly), output_dir, now)
    publish_artifacts(weekly, files, now)
    result = {
        "week": window.label,
        "files": files,
        "requests": dict(client.request_counts),
        "notes": weekly.notes,
        "history": weekly.history,
    }
    if deliver_to is not None and deliver_to.blocks:
        subject, body = notify.report_summary(
            weekly.kpis, window.label, str(Path(files["report.html"]).resolve())
        )
        result["delivered"] = notify.deliver_report(deliver_to, subject, body)
    return result


# ---------------------------------------------------------------------------------------------
# Command line (flows/report_cli.py: checked before the flow starts)

_sla_option = sla_option
build_parser = report_parser


def main(argv: Sequence[str] | None = None) -> int:
    return report_command_line(argv, load_flow=lambda: weekly_report)
