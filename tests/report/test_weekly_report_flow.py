"""End to end: the weekly-report flow on the sandbox API, under a real local Prefect server.

The files exist, kpis.json agrees with counts made here directly over the sandbox's state and
its activity logs, the requests stay near the lower bound, and the HTML loads in headless
Chromium without errors.
"""
from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tasks.report import frames
from tasks.sla import DEFAULT_SLA_DAYS
from tests.fixtures.harness import sandbox_environment

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SEED = 11
INCIDENTS = 400


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _closed_at(incident: dict) -> datetime | None:
    if incident["status"] == "RESOLVED":
        return _time(incident.get("resolved_at"))
    if incident["status"] == "IGNORED":
        return _time(incident.get("ignored_at"))
    return None


def _open_at(incident: dict, log: list, at: datetime) -> bool:
    """First seen before `at`, and its last closing or reopening before `at` not a closing."""
    opened = _time(incident.get("date"))
    if opened is not None and opened >= at:
        return False
    moves = [e for e in log if e.created_at < at
             and e.key in ("RESOLVE", "IGNORE", "UNRESOLVE", "REOPEN")]
    return not moves or moves[-1].key not in ("RESOLVE", "IGNORE")


def _closures_in(log: list, start: datetime, end: datetime) -> list:
    return [e for e in log if e.key in ("RESOLVE", "IGNORE") and start <= e.created_at < end]


@pytest.fixture(scope="module")
def run(prefect_server, tmp_path_factory):
    import sandbox

    out = tmp_path_factory.mktemp("reports")
    with sandbox.running(seed=SEED, incidents=INCIDENTS) as box:
        window = frames.last_complete_week(box.workspace.now, "Europe/Paris")
        # The no_audit token meets a 403 on the audit log.
        with sandbox_environment(box, out / "ledger.db", "no_audit"):
            from flows.weekly_report import weekly_report

            result = weekly_report(
                week=window.label, timezone_name="Europe/Paris", output_dir=str(out)
            )
            # This week, not over yet: the partial week the demo reports.
            year, week, _ = datetime.now(UTC).isocalendar()
            current = frames.Window(year, week, "UTC")
            partial = weekly_report(week=current.label, output_dir=str(out / "partial"))
        from clients.gitguardian import GitGuardianClient

        client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
        logs = {
            i: sorted(client.activity_logs(i), key=lambda e: (e.created_at, e.id))
            for i in box.store.incidents
        }
        yield {
            "result": result,
            "state": box.state(),
            "window": window,
            "out": out,
            "logs": logs,
            "partial": partial,
            "current": current,
        }


def test_files_exist(run):
    folder = run["out"] / run["window"].label
    for name in ("report.md", "report.html", "incidents.csv", "kpis.json"):
        assert (folder / name).stat().st_size > 0, name
    assert run["result"]["files"]["report.html"] == str(folder / "report.html")


def test_kpis_agree_with_the_sandbox_state(run):
    window, state = run["window"], run["state"]
    kpis = json.loads((run["out"] / window.label / "kpis.json").read_text())["kpis"]
    start, end = window.start.to_pydatetime(), window.end.to_pydatetime()
    incidents = list(state["incidents"].values())
    logs = run["logs"]

    opened = sum(1 for i in incidents if _time(i.get("date")) and start <= _time(i["date"]) < end)
    # closed in the week: a closure in its log there, counted once, by its latest one
    closed = [
        _closures_in(logs[i["id"]], start, end)[-1]
        for i in incidents
        if _closures_in(logs[i["id"]], start, end)
    ]
    backlog: dict[str, int] = {}
    for i in incidents:
        if _open_at(i, logs[i["id"]], end):
            severity = i.get("severity") or "unknown"
            backlog[severity] = backlog.get(severity, 0) + 1

    assert opened > 0 and closed, "the seeded week should hold openings and closures"
    assert kpis["opened"]["value"] == opened
    assert kpis["closed"]["value"] == len(closed)
    assert kpis["ignored"]["value"] == sum(1 for e in closed if e.key == "IGNORE")
    assert kpis["backlog"]["value"] == sum(backlog.values()) > 0
    assert {s: v["value"] for s, v in kpis["backlog_by_severity"].items() if v["value"]} == backlog


def test_missing_audit_scope_is_reported_and_the_report_goes_on(run):
    document = json.loads((run["out"] / run["window"].label / "kpis.json").read_text())
    assert document["kpis"]["audit_log"] is None
    assert any("audit_logs:read" in note for note in document["notes"])
    assert "audit\\_logs:read" in (run["out"] / run["window"].label / "report.md").read_text()


def test_requests_stay_near_the_lower_bound(run):
    window, state = run["window"], run["state"]
    trend_start = frames.trend_windows(window, 12)[0].start.to_pydatetime()
    needed = [
        i
        for i in state["incidents"].values()
        if i["status"] in ("TRIGGERED", "ASSIGNED")
        or (_time(i.get("date")) and _time(i["date"]) >= trend_start)
        or (_closed_at(i) and _closed_at(i) >= trend_start)
    ]
    requests = run["result"]["requests"]
    lower_bound = math.ceil(len(needed) / 100)
    # five disjoint passes: each may end on one partial page, or read one page past the range
    assert lower_bound <= requests["GET /v1/incidents/secrets"] <= lower_bound + 5
    assert requests["GET /v1/members"] == math.ceil(len(state["members"]) / 100)
    # activity logs: one request each for those the history needs (none first seen after the
    # week: their past is after the report's range)
    end = window.end.to_pydatetime()
    histories = [i for i in needed if not (_time(i.get("date")) and _time(i["date"]) >= end)]
    assert requests["GET /v1/incidents/secrets/{id}/activity-logs"] == len(histories)


def test_artifacts_are_published(run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    week = run["window"].label.lower()
    keys = [f"weekly-report-{what}-{week}" for what in ("summary", "sla-breaches", "automation")]
    keys.append(f"weekly-report-{week}")
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys))
        )
    assert {a.key for a in found} == set(keys)
    by_key = {a.key: a for a in found}
    html = str(Path(run["result"]["files"]["report.html"]).resolve())
    # The UI gets what opens there: the report as Markdown, and the HTML's path as text to copy
    # (a file:// link does nothing from a web page).
    summary = by_key[f"weekly-report-summary-{week}"].data
    assert f"- `{html}`" in summary and "file://" not in summary
    assert summary.index("| **open at the week's end** |") < summary.index("Files (")
    whole = by_key[f"weekly-report-{week}"].data
    assert whole == (run["out"] / run["window"].label / "report.md").read_text()
    assert "## About to breach SLA (next 7 days)" in whole and "## Every KPI" in whole
    # Table artifacts render Markdown in cells: the incident links to GitGuardian's dashboard.
    urls = {i["id"]: i["gitguardian_url"] for i in run["state"]["incidents"].values()}
    rows = by_key[f"weekly-report-sla-breaches-{week}"].data
    assert rows and "](https://dashboard.gitguardian.com/workspace/" in rows
    first = json.loads(rows)[0]["incident"]
    incident_id = int(first[1 : first.index("]")])
    assert first == f"[{incident_id}]({urls[incident_id]})"


def _load(browser, path: Path) -> None:
    browser.open(path.resolve().as_uri())
    browser.wait_for(
        "document.querySelectorAll('img.chart').length === 4 && "
        "[...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )


HEADLINE_BOX = "JSON.stringify(document.getElementById('headline').getBoundingClientRect())"
LINKS = (
    "[...document.querySelectorAll('a')].map(a => ({text: a.textContent, href: a.href, "
    "target: a.target, rel: a.rel}))"
)
CHART_WIDTHS = (
    "[...document.querySelectorAll('img.chart')].map(i => i.getBoundingClientRect().width)"
)


def test_html_in_chromium_headline_on_the_first_screen_links_and_wide_charts(run, tmp_path):
    from tests.fixtures.browser import Chromium

    html = run["out"] / run["window"].label / "report.html"
    urls = {i["id"]: i["gitguardian_url"] for i in run["state"]["incidents"].values()}
    with Chromium(width=1280, height=800) as browser:
        _load(browser, html)
        title = f"GitGuardian weekly remediation report {run['window'].label}"
        assert browser.evaluate("document.title") == title
        shot = browser.screenshot(tmp_path / "first-screen.png")
        # The six headline KPIs are on the first screen of a 1280x800 window.
        box = json.loads(browser.evaluate(HEADLINE_BOX))
        assert 0 <= box["top"] and box["bottom"] <= 800, box
        cards = browser.evaluate(
            "[...document.querySelectorAll('#headline .kpi')].map(k => "
            "[k.dataset.kpi, k.getBoundingClientRect().bottom])"
        )
        assert [k for k, _ in cards] == [
            "backlog",
            "opened",
            "closed",
            "sla_breaches",
            "time_to_close_median_days",
            "publicly_exposed_open",
        ]
        assert all(bottom <= 800 for _, bottom in cards)
        # Charts sized for the page.
        widths = browser.evaluate(CHART_WIDTHS)
        assert len(widths) == 4 and min(widths) >= 900, widths
        # Every link is an incident's, to its page on GitGuardian's dashboard, in a new tab.
        links = browser.evaluate(LINKS)
        assert links, "the SLA tables link their incidents"
        for found in links:
            incident_id = int(found["text"])
            assert found["href"] == urls[incident_id], found
            assert found["target"] == "_blank" and "noopener" in found["rel"]
        assert browser.evaluate("document.getElementById('partial-week')") is None
        assert browser.console == [], browser.console
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_partial_week_html_in_chromium(run, tmp_path):
    from tests.fixtures.browser import Chromium

    html = Path(run["partial"]["files"]["report.html"])
    with Chromium(width=1280, height=800) as browser:
        _load(browser, html)
        label = browser.evaluate("document.getElementById('partial-week').textContent")
        assert label.startswith("Partial week: ") and " of 7 days, data up to " in label
        box = json.loads(browser.evaluate(HEADLINE_BOX))
        assert box["bottom"] <= 800, box
        partial_box = json.loads(
            browser.evaluate(
                "JSON.stringify(document.getElementById('partial-week').getBoundingClientRect())"
            )
        )
        assert partial_box["bottom"] <= box["top"]  # read before the numbers
        assert "opened so far" in browser.evaluate("document.getElementById('headline').innerText")
        assert min(browser.evaluate(CHART_WIDTHS)) >= 900
        browser.screenshot(tmp_path / "partial.png")
        assert browser.console == [], browser.console


def test_partial_week_breaches_are_measured_when_the_report_was_made(run):
    """In a week not over yet, "open past SLA" is measured when the report is made: its days
    are the incident's age then, and no incident whose SLA ends later is a breach yet."""
    document = json.loads(Path(run["partial"]["files"]["kpis.json"]).read_text())
    assert document["partial_week_days"] is not None
    made = _time(document["generated_at"])
    state = run["state"]["incidents"]
    past = [b for b in document["sla_breaches"] if b["kind"] == "open past SLA"]
    assert past, "the seeded backlog holds incidents past their SLA"
    for breach in past:
        age = (made - _time(state[breach["id"]]["date"])).total_seconds() / 86400
        assert abs(breach["days"] - age) <= 0.06, breach  # rounded to one decimal
        assert age > breach["sla_days"], breach
    # The same as counted here over the sandbox's state: open now, older than its SLA.
    expected = {
        i["id"]
        for i in state.values()
        if i["status"] in ("TRIGGERED", "ASSIGNED")
        and DEFAULT_SLA_DAYS.get(i.get("severity") or "unknown") is not None
        and _time(i.get("date"))
        and (made - _time(i["date"])).total_seconds() / 86400
        > DEFAULT_SLA_DAYS[i.get("severity") or "unknown"]
    }
    assert {b["id"] for b in past} == expected
