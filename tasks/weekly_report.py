"""The weekly report's Prefect tasks: fetch (incidents in a few disjoint passes, members,
occurrences of two weeks, audit log, ledger, the activity logs of the incidents whose history can
change the figures), compute (tasks/report/, pure) and write the report's files. The flow is
flows/weekly_report.py.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from clients.models import OPEN_STATUSES
from tasks import settings
from tasks.fetch import FETCH
from tasks.progress import paged
from tasks.report import frames, kpis, outlook, render
from tasks.report import history as report_history
from tasks.report.files import incidents_csv, kpis_json
from tasks.report.html_page import html_page

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
    for status in OPEN_STATUSES:
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
    window: frames.Window,
    sla_days: dict[str, int | None],
    trend_weeks: int,
    token_id: str | None,
    history: dict[str, Any] | None = None,
    now: datetime | None = None,
    escalations: list[Any] | None = None,
) -> kpis.WeeklyReport:
    notes = []
    if audit is None:
        notes.append("Audit log not available: the API token lacks the audit_logs:read scope.")
    frame = frames.incidents_frame(incidents)
    now = now or datetime.now(UTC)
    # In a partial week, states (backlog ages, open past SLA) are measured now, not at its end.
    weekly = kpis.compute(
        frame,
        window,
        members=frames.members_frame(members),
        occurrences=frames.occurrences_frame(occurrences),
        audit=None if audit is None else frames.audit_frame(audit),
        ledger=None if ledger is None else frames.ledger_frame(ledger),
        sla_days=sla_days,
        trend_weeks=trend_weeks,
        token_id=token_id,
        notes=notes,
        history=history_of(frame, history),
        now=now,
        escalations=None if escalations is None else frames.escalation_frame(escalations),
    )
    # What reaches its SLA in the next 7 days: from the week's end, or from now in a partial week.
    return outlook.add_outlook(weekly, frame, sla_days, now)


@task(name="write-report", **NO_CACHING)
def write_report(
    weekly: kpis.WeeklyReport, output_dir: str, generated_at: datetime | None = None
) -> dict[str, str]:
    paths = write_files(weekly, output_dir, generated_at=generated_at)
    return {name: str(path) for name, path in paths.items()}


def write_files(
    weekly: kpis.WeeklyReport, folder: Path | str, *, generated_at: datetime | None = None
) -> dict[str, Path]:
    """Write report.md, report.html, incidents.csv and kpis.json under `folder/<YYYY>-W<WW>/`."""
    generated_at = render._when(weekly, generated_at)
    out = Path(folder) / weekly.window.label
    out.mkdir(parents=True, exist_ok=True)
    names = ("report.html", "report.md", "incidents.csv", "kpis.json")
    paths = {name: out / name for name in names}
    shown = {name: path.resolve() for name, path in paths.items()}
    files = {
        "report.md": render.markdown(weekly, generated_at, shown),
        "report.html": html_page(weekly, generated_at=generated_at),
        "incidents.csv": incidents_csv(weekly),
        "kpis.json": kpis_json(weekly, generated_at),
    }
    for name, text in files.items():
        paths[name].write_text(text, encoding="utf-8")
    return paths
