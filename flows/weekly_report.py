"""Weekly report: what came in, what was fixed, how fast, what is late, who holds what, and what
the automation did, as files under `reports/<YYYY>-W<WW>/` and Prefect artifacts.

fetch (incidents in a few disjoint passes, members, occurrences of two weeks, audit log,
ledger, the activity logs of the incidents whose history can change the figures) -> compute
(tasks/report.py, tasks/report_history.py, pandas) -> render (tasks/report_render.py) ->
artifacts.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # the command line: checked before Prefect loads (flows/cli.py)
    from flows.cli import report_command_line

    sys.exit(report_command_line())

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from flows.cli import DEFAULT_HISTORY_BUDGET, report_command_line, report_parser, sla_option
from tasks import notify, preflight, report, report_history, report_render, settings
from tasks.errors import one_line_errors
from tasks.fetch import FETCH
from tasks.notify import ReportDelivery
from tasks.progress import paged
from tasks.runtime import run_name

FLOW = "weekly-report"
DESCRIPTION = (
    "Write the weekly remediation report (Markdown, HTML with charts, CSV, JSON) and artifacts."
)
HISTORY_READERS = 4  # activity logs read at once (the client's rate limiter still paces them)
ACTIVITY_LOGS = "GET /v1/incidents/secrets/{id}/activity-logs"
# Hashing 100k incidents (and a client holding locks) into a cache key costs more than it saves.
NO_CACHING = dict(cache_policy=NO_CACHE)


# ---------------------------------------------------------------------------------------------
# Fetching, with as few requests as the API allows.
#
# The report needs every incident that is open now, opened since the trend range began, or
# closed since then (older closed incidents change no KPI). A single unfiltered sweep would
# read the whole history; instead four disjoint sets are read, each page holding 100 incidents:
#   1. date_after=trend start (any status): everything opened in the trend range;
#   2. status=TRIGGERED, then ASSIGNED, date_before=trend start: the older open backlog (one
#      call per status because comma lists are unconfirmed on this endpoint);
#   3. status=RESOLVED ordered by -resolved_at, date_before=trend start: older incidents closed
#      in the range; the listing is read lazily and stops at the first page that reaches closures
#      older than the range (IGNORED likewise with -ignored_at).
# The sets do not overlap (bar incidents dated exactly at the boundary, de-duplicated by id),
# so the cost is the lower bound ceil(n/100) plus at most one partial page per pass.


def _closed_since(pages: Iterator[list[Any]], field: str, since: datetime) -> Iterator[Any]:
    """Incidents from a listing ordered by `-field`, until the closures get older than `since`.

    Stops early only while the answers really come in descending order: a server that ignored
    `ordering` would otherwise make us stop too soon, so then the whole listing is read.
    """
    ordered, last = True, None
    for page in pages:
        stamps = [getattr(i, field, None) for i in page]
        for incident, stamp in zip(page, stamps):
            if stamp is not None and last is not None and stamp > last:
                ordered = False
            last = stamp if stamp is not None else last
            if stamp is not None and stamp >= since:
                yield incident
        if ordered and last is not None and last < since:
            return


@task(name="fetch-report-incidents", **FETCH)
def fetch_report_incidents(client: Any, trend_start: datetime) -> list[Any]:
    boundary = trend_start + timedelta(seconds=1)  # overlap a second rather than miss an edge
    found: dict[int, Any] = {}
    pages = client.incidents(per_page=100, date_after=trend_start).pages()
    for page in paged(pages, "incidents opened in the trend range", "incidents"):
        found.update((i.id, i) for i in page)
    for status in report.OPEN_STATUSES:
        pages = client.incidents(per_page=100, status=status, date_before=boundary).pages()
        for page in paged(pages, f"older {status} incidents", "incidents"):
            found.update((i.id, i) for i in page if i.status == status)
    for status, field in (("RESOLVED", "resolved_at"), ("IGNORED", "ignored_at")):
        pages = paged(
            client.incidents(
                per_page=100, status=status, date_before=boundary, ordering=f"-{field}"
            ).pages(),
            f"older incidents {status} in the trend range",
            "incidents",
        )
        found.update(
            (i.id, i) for i in _closed_since(pages, field, trend_start) if i.status == status
        )
    return list(found.values())


@task(name="fetch-report-members", **FETCH)
def fetch_report_members(client: Any) -> list[Any]:
    """Every member, once: who is inactive, and who is no longer a member at all."""
    return [
        m for page in paged(client.members(per_page=100).pages(), "members", "members")
        for m in page
    ]


@task(name="fetch-report-occurrences", **FETCH)
def fetch_report_occurrences(client: Any, since: datetime, until: datetime) -> list[Any]:
    """Occurrences of the week and the one before: they name the sources ("top sources")."""
    pages = client.occurrences(per_page=100, date_after=since, date_before=until).pages()
    return [o for page in paged(pages, "occurrences of the two weeks", "occurrences") for o in page]


@task(name="fetch-report-audit-log", **FETCH)
def fetch_audit_log(client: Any, since: datetime, until: datetime) -> list[Any] | None:
    """The audit log of the week and the one before; None when the token may not read it."""
    from clients.gitguardian import PermissionDenied

    try:
        pages = client.audit_logs(per_page=100, date_after=since, date_before=until).pages()
        return [a for page in paged(pages, "audit log of the two weeks", "entries") for a in page]
    except PermissionDenied:
        return None


@task(name="fetch-report-ledger", **NO_CACHING)
def fetch_ledger(since: datetime, until: datetime) -> list[Any] | None:
    """Playbook outcomes from our ledger; None when there is no ledger to read."""
    logger = get_run_logger()
    try:
        return list(settings.ledger().outcomes(since, until))
    except Exception as exc:  # noqa: BLE001 - a missing ledger must not stop the report
        logger.warning("ledger not read (%s): the report shows no automation", type(exc).__name__)
        return None


@task(name="fetch-report-escalations", **NO_CACHING)
def fetch_escalations() -> list[Any] | None:
    """The SLA ladder's rungs done (the ledger's applied `sla-escalation` decisions, all of
    them: a rung done weeks ago is still an incident's last); None when the ledger is unread."""
    from tasks.decide.sla_escalation import PLAYBOOK as SLA_PLAYBOOK

    logger = get_run_logger()
    try:
        return list(settings.ledger().applied(SLA_PLAYBOOK))
    except Exception as exc:  # noqa: BLE001 - a missing ledger must not stop the report
        logger.warning(
            "ledger not read (%s): the report shows no escalation rung", type(exc).__name__
        )
        return None


# History: the activity logs of the incidents whose past can make the figures differ from
# today's data (report_history.candidates: closed since the trend start, flagged regressions,
# opened in the range, then older open ones), at most `budget` of them, read 4 at a time. A 403
# on the first one (the token may not read activity logs) stops there: the report then says it
# rebuilt its past from today's data. A log that cannot be read leaves its incident to today's
# data, and the report counts them.


@task(name="fetch-report-history", **FETCH)
def fetch_report_history(
    client: Any, incidents: list[Any], since: datetime, until: datetime, budget: int
) -> dict[str, Any]:
    from clients.gitguardian import GitGuardianError, PermissionDenied

    chosen = report_history.candidates(incidents, since, until, budget)
    before = client.request_counts.get(ACTIVITY_LOGS, 0)
    logs: dict[int, list[Any]] = {}
    failed: list[int] = []

    def read(incident_id: int) -> None:
        try:
            logs[incident_id] = list(client.activity_logs(incident_id, per_page=100))
        except PermissionDenied:
            raise
        except GitGuardianError:  # gone since it was listed, or the API failed on it
            failed.append(incident_id)

    status = "off" if budget <= 0 else "read"
    if chosen.ids:
        try:
            read(chosen.ids[0])  # a missing scope shows at once, before 4 readers start
            with ThreadPoolExecutor(HISTORY_READERS) as pool:
                list(pool.map(read, chosen.ids[1:]))
        except PermissionDenied:
            status, logs = "forbidden", {}
    requests = client.request_counts.get(ACTIVITY_LOGS, 0) - before
    return {
        "status": status,
        "logs": logs,
        "failed": failed,
        "candidates": chosen,
        "requests": requests,
    }


def history_of(frame: Any, read: dict[str, Any] | None) -> report_history.History:
    """The report's History from what `fetch_report_history` read, with its statement."""
    if read is None:
        return report_history.from_state(
            frame, report_history.state_note("no activity log was read")
        )
    if read["status"] == "off":
        return report_history.from_state(
            frame, report_history.state_note("history_budget is 0: no activity log was read")
        )
    if read["status"] == "forbidden":
        return report_history.from_state(
            frame,
            report_history.state_note(
                "the API token may not read activity logs: 403 on the first one"
            ),
        )
    history = report_history.from_logs(
        frame, read["logs"], read["candidates"], requests=read["requests"]
    )
    if read["failed"]:
        history.note += (
            f" {len(read['failed'])} activity log(s) could not be read: those "
            f"incidents count from today's data."
        )
        history.summary["failed"] = len(read["failed"])
    return history


@task(name="compute-report", **NO_CACHING)
def compute_report(
    incidents: list[Any],
    members: list[Any],
    occurrences: list[Any],
    audit: list[Any] | None,
    ledger: list[Any] | None,
    window: report.Window,
    sla_days: dict[str, int | None],
    trend_weeks: int,
    token_id: str | None,
    history: dict[str, Any] | None = None,
    now: datetime | None = None,
    escalations: list[Any] | None = None,
) -> report.WeeklyReport:
    notes = []
    if audit is None:
        notes.append("Audit log not available: the API token lacks the audit_logs:read scope.")
    frame = report.incidents_frame(incidents)
    now = now or datetime.now(UTC)
    # In a partial week, states (backlog ages, open past SLA) are measured now, not at its end.
    weekly = report.compute(
        frame,
        window,
        members=report.members_frame(members),
        occurrences=report.occurrences_frame(occurrences),
        audit=None if audit is None else report.audit_frame(audit),
        ledger=None if ledger is None else report.ledger_frame(ledger),
        sla_days=sla_days,
        trend_weeks=trend_weeks,
        token_id=token_id,
        notes=notes,
        history=history_of(frame, history),
        now=now,
        escalations=None if escalations is None else report.escalation_frame(escalations),
    )
    # What reaches its SLA in the next 7 days: from the week's end, or from now in a partial week.
    return report.add_outlook(weekly, frame, sla_days, now)


@task(name="write-report", **NO_CACHING)
def write_report(
    weekly: report.WeeklyReport, output_dir: str, generated_at: datetime | None = None
) -> dict[str, str]:
    paths = report_render.write_report(weekly, output_dir, generated_at=generated_at)
    return {name: str(path) for name, path in paths.items()}


def publish_artifacts(
    weekly: report.WeeklyReport, files: dict[str, str], generated_at: datetime | None = None
) -> None:
    """What the Prefect UI shows: the headline (with the files' paths to copy: a file:// link
    does not open from a browser's page), the whole report as Markdown with its tables and
    links, and the SLA breaches and automation as tables."""
    week = weekly.window.label.lower()
    shown = {name: Path(path).resolve() for name, path in files.items()}
    create_markdown_artifact(
        key=f"weekly-report-summary-{week}",
        markdown=report_render.summary_markdown(weekly, generated_at, shown),
        description=f"Weekly report {weekly.window.label}: the headline",
    )
    create_markdown_artifact(
        key=f"weekly-report-{week}",
        markdown=Path(files["report.md"]).read_text(encoding="utf-8"),
        description=f"Weekly report {weekly.window.label}: the whole report "
        "(the HTML file adds the charts)",
    )
    breaches = report_render.breach_rows(weekly) or [{"result": "no SLA breach"}]
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


def _window(week: str | None, tz: str, now: datetime | None = None) -> report.Window:
    if week:
        return report.parse_week(week, tz)
    return report.last_complete_week(now or datetime.now(UTC), tz)


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
    sla = dict(report.DEFAULT_SLA_DAYS if sla_days is None else sla_days)
    # The previous week is always read: every KPI shows its change from it.
    trend_start = report.trend_windows(window, max(trend_weeks, 2))[0].start.to_pydatetime()
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
# Command line (flows/cli.py: checked before the flow starts)

_sla_option = sla_option
build_parser = report_parser


def main(argv: Sequence[str] | None = None) -> int:
    return report_command_line(argv, load_flow=lambda: weekly_report)
