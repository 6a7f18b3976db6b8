"""End to end: the weekly-report flow on the sandbox API, under a real local Prefect server.

The files exist, kpis.json agrees with counts made here directly over the sandbox's state and
its activity logs, the requests stay near the lower bound, and the HTML loads in headless
Chromium without errors.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from tasks import report

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
        window = report.last_complete_week(box.workspace.now, "Europe/Paris")
        saved = {k: os.environ.get(k) for k in ("GITGUARDIAN_API_URL", "GITGUARDIAN_API_KEY", "LEDGER_URL",
                                                "GITGUARDIAN_REQUESTS_PER_MINUTE")}
        os.environ["GITGUARDIAN_REQUESTS_PER_MINUTE"] = "0"  # the sandbox sets no limit
        os.environ["GITGUARDIAN_API_URL"] = box.url
        os.environ["GITGUARDIAN_API_KEY"] = box.tokens["no_audit"]  # meets a 403 on the audit log
        os.environ["LEDGER_URL"] = f"sqlite:///{out / 'ledger.db'}"
        try:
            from flows.weekly_report import weekly_report

            result = weekly_report(week=window.label, timezone_name="Europe/Paris", output_dir=str(out))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        from clients.gitguardian import GitGuardianClient

        client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
        logs = {i: sorted(client.activity_logs(i), key=lambda e: (e.created_at, e.id))
                for i in box.store.incidents}
        yield {"result": result, "state": box.state(), "window": window, "out": out, "logs": logs}


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
    closed = [_closures_in(logs[i["id"]], start, end)[-1] for i in incidents
              if _closures_in(logs[i["id"]], start, end)]
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
    trend_start = report.trend_windows(window, 12)[0].start.to_pydatetime()
    needed = [
        i for i in state["incidents"].values()
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
    keys = [f"weekly-report-{what}-{week}" for what in ("summary", "sla-breaches", "automation", "html")]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    assert {a.key for a in found} == set(keys)
    link = next(a for a in found if a.key.startswith("weekly-report-html"))
    assert Path(run["result"]["files"]["report.html"]).resolve().as_uri() in link.data


def _chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return path


def test_html_loads_in_headless_chromium(run, tmp_path):
    html = run["out"] / run["window"].label / "report.html"
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", html.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"GitGuardian weekly remediation report {run['window'].label}" in done.stdout
    assert done.stdout.count('src="data:image/png;base64,') == 4
    # The page has no script: any console message at all means something failed to load.
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
