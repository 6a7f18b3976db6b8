"""The weekly report's past backlogs, closures and reopenings come from activity logs.

On a sandbox whose history holds reopenings and reassignments (its generated past, plus a
person reopening incidents closed in the report's range and reassigning others), the weekly
report flow's backlog at each week's end and its reopen counts equal those this test computes
by its own simple code from every incident's activity log. Today's data alone would say
otherwise (checked, so the test cannot pass on a report that ignored the logs). Without the
right to read activity logs the report says it fell back to today's data.
"""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from clients.gitguardian import GitGuardianClient
from tasks.report import frames
from tests.fixtures.harness import sandbox_environment

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

SEED = 5
INCIDENTS = 300
TREND_WEEKS = 8
CLOSING, REOPENING = {"RESOLVE", "IGNORE"}, {"UNRESOLVE", "REOPEN"}


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _window(box) -> frames.Window:
    # The week before the last complete one: another module's report of the last one keeps
    # its artifact keys (weekly-report-*-<week>) to itself in the session's Prefect server.
    return frames.last_complete_week(box.workspace.now).previous()


def _run(box, out, **options):
    from flows.weekly_report import weekly_report

    window = _window(box)
    with sandbox_environment(box, out / "ledger.db"):
        result = weekly_report(week=window.label, output_dir=str(out), trend_weeks=TREND_WEEKS,
                               **options)
    document = json.loads((out / window.label / "kpis.json").read_text())
    return window, result, document


@pytest.fixture(scope="module")
def world(prefect_server, tmp_path_factory):
    import sandbox

    with sandbox.running(seed=SEED, incidents=INCIDENTS) as box:
        window = _window(box)
        start = frames.trend_windows(window, TREND_WEEKS)[0].start.to_pydatetime()
        end = window.end.to_pydatetime()
        incidents = sorted(box.store.incidents.values(), key=lambda i: i["id"])
        closed_in_range = [i["id"] for i in incidents if i["status"] == "RESOLVED"
                           and start <= _time(i["resolved_at"]) < end]
        assigned = [i["id"] for i in incidents if i["status"] == "ASSIGNED"]
        emails = sorted(m["email"] for m in box.workspace.members
                        if m.get("active", True) and m.get("access_level") in ("owner", "manager"))
        # A person reopens incidents closed in the range (today they look open all along) and
        # hands others to someone else; one reopened incident is resolved again.
        for incident_id in closed_in_range[:6]:
            box.human.reopen(incident_id)
        box.human.resolve(closed_in_range[0], secret_revoked=True)
        for n, incident_id in enumerate(assigned[:6]):
            current = box.store.incidents[incident_id]["assignee_email"]
            box.human.assign(incident_id, next(e for e in emails[n % len(emails):] + emails
                                               if e != current))
        out = tmp_path_factory.mktemp("history-report")
        _, result, document = _run(box, out)
        fallback_out = tmp_path_factory.mktemp("history-fallback")
        box.respond("GET", r"/v1/incidents/secrets/\d+/activity-logs", 403,
                    json.dumps({"detail": "You do not have permission to perform this action."}),
                    times=None)
        _, fallback, fallback_document = _run(box, fallback_out)
        box.clear_hooks()
        client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
        every = list(client.incidents())
        logs = {i.id: list(client.activity_logs(i.id)) for i in every}
        yield {"window": window, "result": result, "document": document, "incidents": every,
               "logs": logs, "reopened_now": closed_in_range[:6], "fallback": fallback,
               "fallback_document": fallback_document, "out": out,
               "fallback_out": fallback_out}


def open_from_log(incident, log, at: datetime) -> bool:
    """This test's own reading: first seen before `at`, and the last closing or reopening
    event before `at` (if any) is not a closing."""
    if incident.date is not None and incident.date >= at:
        return False
    moves = [e for e in sorted(log, key=lambda e: (e.created_at, e.id))
             if e.created_at < at and e.key in CLOSING | REOPENING]
    return not moves or moves[-1].key in REOPENING


def reopened_in(logs, start: datetime, end: datetime) -> int:
    return sum(1 for log in logs.values()
               if any(e.key in REOPENING and start <= e.created_at < end for e in log))


def test_the_history_holds_reopenings_and_reassignments(world):
    logs = world["logs"]
    start = frames.trend_windows(world["window"], TREND_WEEKS)[0].start.to_pydatetime()
    reopened = [i for i, log in logs.items() if any(e.key in REOPENING for e in log)]
    reassigned = [i for i, log in logs.items() if sum(e.key == "ASSIGN" for e in log) > 1]
    assert len(reopened) > 20 and len(reassigned) > 20
    assert reopened_in(logs, start, world["window"].end.to_pydatetime()) > 0


def test_past_backlogs_equal_those_recomputed_from_the_activity_logs(world):
    document, incidents, logs = world["document"], world["incidents"], world["logs"]
    assert document["history"]["method"] == "activity_logs"
    trends = {row["week"]: row for row in document["trends"]}
    weeks = frames.trend_windows(world["window"], TREND_WEEKS)
    assert list(trends) == [w.label for w in weeks]
    for week in weeks:
        at = week.end.to_pydatetime()
        expected = sum(open_from_log(i, logs[i.id], at) for i in incidents)
        assert trends[week.label]["backlog"] == expected, week.label
        assert trends[week.label]["reopened"] == reopened_in(
            logs, week.start.to_pydatetime(), at), week.label
    kpis = document["kpis"]
    assert kpis["backlog"]["value"] == trends[weeks[-1].label]["backlog"]
    assert kpis["backlog"]["previous"] == trends[weeks[-2].label]["backlog"]
    assert kpis["reopened"]["value"] == trends[weeks[-1].label]["reopened"]


def test_today_s_data_alone_would_give_other_backlogs(world):
    """The fallback (no right to read activity logs) rebuilds from today's data: the incidents
    reopened today count as open all along, so its past backlogs differ, and it says so."""
    fallback = world["fallback_document"]
    assert fallback["history"]["method"] == "current_state"
    note = next(n for n in fallback["notes"] if "today's data" in n)
    assert "403" in note and "reopenings are not counted" in note
    assert "rebuilt from today" in (world["fallback_out"] / world["window"].label
                                   / "report.md").read_text()
    logged = {r["week"]: r["backlog"] for r in world["document"]["trends"]}
    rebuilt = {r["week"]: r["backlog"] for r in fallback["trends"]}
    assert any(rebuilt[w] != logged[w] for w in logged)
    assert all(r["reopened"] is None for r in fallback["trends"])


def test_the_logs_read_are_those_whose_history_matters(world):
    result, history = world["result"], world["document"]["history"]
    requests = result["requests"]["GET /v1/incidents/secrets/{id}/activity-logs"]
    assert history["requests"] == requests == history["logs_read"]  # one page each here
    assert history["left_out"] == 0 and history["log_disagrees_with_state"] == 0
    assert history["logs_read"] == history["candidates"] < len(world["incidents"])
    note = next(n for n in world["document"]["notes"] if "activity logs" in n)
    assert "every incident whose history could change these figures" in note
