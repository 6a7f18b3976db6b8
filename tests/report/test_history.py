"""The report's history from activity logs (tasks/report/history.py), on hand-built logs:
closures, reopenings, time to close per open period, the candidates and the budget."""
from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from tasks.report import frames, kpis
from tasks.report import history as report_history
from tests.report.test_kpis import INCIDENTS, OUR_TOKEN, W43, incident

T = pd.Timestamp


def entry(id, at, key, data=None, token=None):
    return {"id": id, "created_at": at, "api_token_id": token,
            "content": {"type": "action", "content_key": key, "data": data}}


# Incident 10 (RESOLVED now, dated 10-01): ignored on 10-04 12:00 (W40), reopened 10-07, resolved
# on 10-21 (W43). Incident 13 (ASSIGNED now, a stale resolved_at of 10-20): resolved on 10-20,
# reopened 10-22 (both in W43).
LOGS = {
    10: [entry(1, "2026-10-01T00:00:00Z", "TRIGGER"),
         entry(2, "2026-10-04T12:00:00Z", "IGNORE", {"ignore_reason": "false_positive"}),
         entry(3, "2026-10-07T00:00:00Z", "REOPEN"),
         entry(4, "2026-10-09T00:00:00Z", "ASSIGN", {"assignees": [12]}),
         entry(5, "2026-10-21T00:00:00Z", "RESOLVE", {"revoked": False})],
    13: [entry(6, "2026-10-02T00:00:00Z", "TRIGGER"),
         entry(7, "2026-10-20T00:00:00Z", "RESOLVE", {"revoked": True}, token=OUR_TOKEN),
         entry(8, "2026-10-22T00:00:00Z", "UNRESOLVE"),
         entry(9, "2026-10-22T00:01:00Z", "ASSIGN", {"assignees": [12]})],
}


@pytest.fixture(scope="module")
def frame():
    return frames.incidents_frame(INCIDENTS)


def test_a_log_gives_each_closure_its_reopening_and_open_period(frame):
    row = frame[frame["id"] == 10].iloc[0].to_dict()
    closures, reopens, consistent = report_history.log_closures(row, list(reversed(LOGS[10])))
    assert consistent
    assert [(c[1], c[2], c[3], c[4], c[5], c[7]) for c in closures] == [
        (T("2026-10-04T12:00Z"), T("2026-10-07T00:00Z"), "IGNORED", None, "false_positive",
         T("2026-10-01T00:00Z")),
        (T("2026-10-21T00:00Z"), pd.NaT, "RESOLVED", False, None, T("2026-10-07T00:00Z"))]
    assert reopens == [T("2026-10-07T00:00Z")]


def test_the_week_from_logs_counts_every_closure_and_reopening(frame):
    state = kpis.compute(frame, W43, token_id=OUR_TOKEN, trend_weeks=4)
    history = report_history.from_logs(frame, LOGS)
    logged = kpis.compute(frame, W43, token_id=OUR_TOKEN, trend_weeks=4, history=history)
    k = logged.kpis
    # W43 closures: 9 (0.5 d), 10 (resolved 14 d after its reopening), 11 (12 d) and 13
    # (resolved by our token 18 d after its date, reopened two days later).
    assert (k["closed"]["value"], k["resolved"]["value"], k["ignored"]["value"]) == (4, 3, 1)
    assert k["time_to_close_median_days"]["value"] == 13.0  # 0.5, 12, 14, 18
    assert k["automated_closures"]["value"] == 3  # 9, 11 and 13's closure
    assert (k["reopened"]["value"], k["reopened"]["previous"]) == (1, 0)
    assert state.kpis["reopened"]["value"] is None  # today's data cannot tell
    # W40 ends on 10-05 00:00: 10 was ignored then (reopened on the 7th). Today's data calls it
    # open; its log says closed. Every later week end agrees (10 and 13 open at each).
    by_week = {"state": state.trends.set_index("week"), "logs": logged.trends.set_index("week")}
    assert by_week["logs"].loc["2026-W40", "backlog"] == by_week["state"].loc["2026-W40",
                                                                              "backlog"] - 1
    for week in ("2026-W41", "2026-W42", "2026-W43"):
        assert by_week["logs"].loc[week, "backlog"] == by_week["state"].loc[week, "backlog"]
    assert by_week["logs"].loc["2026-W40", "closed"] == by_week["state"].loc["2026-W40",
                                                                             "closed"] + 1
    assert logged.history["method"] == "activity_logs" and logged.history["from_logs"] == 2
    assert any("activity logs" in note for note in logged.notes)


def test_a_log_that_disagrees_with_the_current_status_is_not_trusted(frame):
    # 13 is ASSIGNED, but this log ends on a closure: counted from today's data.
    truncated = {13: LOGS[13][:2]}
    history = report_history.from_logs(frame, truncated)
    assert history.summary["log_disagrees_with_state"] == 1
    assert "1 incident(s) whose log does not end in their current status" in history.note
    assert set(history.closures["incident_id"]) == set(
        frame.loc[frame["is_closed"], "id"])  # today's closures only


def test_a_closure_holds_until_its_reopening():
    frame = frames.incidents_frame([incident(1, "2026-10-01T00:00:00Z")])
    history = report_history.from_logs(frame, {1: [
        entry(1, "2026-10-02T00:00:00Z", "RESOLVE", {"revoked": False}),
        entry(2, "2026-10-03T00:00:00Z", "UNRESOLVE")]})
    open_at = [bool(report_history.open_at(frame, history, T(at)).iloc[0]) for at in (
        "2026-10-02T00:00Z", "2026-10-02T00:00:01Z", "2026-10-03T00:00Z", "2026-10-03T00:00:01Z")]
    assert open_at == [True, False, False, True]  # an event at t has happened after t


START = datetime(2026, 9, 1, tzinfo=UTC)
END = datetime(2026, 10, 26, tzinfo=UTC)


def test_candidates_are_the_incidents_whose_history_can_matter_most_telling_first():
    found = [
        incident(1, "2026-01-01T00:00:00Z", "RESOLVED", resolved_at="2026-08-01T00:00:00Z"),
        incident(2, "2026-01-01T00:00:00Z", "RESOLVED", resolved_at="2026-09-10T00:00:00Z"),
        incident(3, "2026-01-01T00:00:00Z", "IGNORED", ignored_at="2026-10-30T00:00:00Z"),
        incident(4, "2026-01-01T00:00:00Z", "TRIGGERED", regression=True),
        incident(5, "2026-09-15T00:00:00Z", "ASSIGNED"),
        incident(6, "2026-03-01T00:00:00Z", "TRIGGERED", triggered_at="2026-03-02T00:00:00Z"),
        incident(7, "2026-02-01T00:00:00Z", "TRIGGERED", triggered_at="2026-05-01T00:00:00Z"),
        incident(8, "2026-11-01T00:00:00Z", "TRIGGERED"),  # first seen after the range
        incident(9, "2026-01-01T00:00:00Z", "TRIGGERED", tags=["REGRESSION"]),
    ]
    every = report_history.candidates(found, START, END, budget=100)
    # 1 was closed before the range: today's data is exact for it; so for 8, seen after it.
    assert every.ids == [3, 2, 4, 9, 5, 7, 6] and every.left_out == 0
    assert every.by_tier == {"closed in range": (2, 2), "flagged regression": (2, 2),
                             "opened in range": (1, 1), "older open": (2, 2)}
    cut = report_history.candidates(found, START, END, budget=6)
    assert cut.ids == [3, 2, 4, 9, 5, 7] and cut.left_out == 1
    assert report_history.candidates(found, START, END, budget=0).ids == []


def test_the_note_says_what_the_budget_left_out(frame):
    chosen = report_history.candidates(INCIDENTS, datetime(2026, 9, 28, tzinfo=UTC),
                                       datetime(2026, 10, 26, tzinfo=UTC), budget=3)
    history = report_history.from_logs(frame, {i: [] for i in chosen.ids if i not in LOGS},
                                       chosen, requests=3)
    assert f"left out {chosen.left_out} of the {chosen.total}" in history.note
    assert history.summary["budget"] == 3 and history.summary["requests"] == 3
    fallback = report_history.from_state(frame, report_history.state_note("a 403"))
    assert "rebuilt from today's data (a 403)" in fallback.note
    assert fallback.reopened_in(W43.start, W43.end) is None


class LogClient:
    """Answers activity logs from a dict; `refuse` ids raise the given error."""

    def __init__(self, logs, refuse=None):
        from collections import Counter

        self.logs, self.refuse, self.request_counts = logs, refuse or {}, Counter()

    def activity_logs(self, incident_id, per_page):
        self.request_counts["GET /v1/incidents/secrets/{id}/activity-logs"] += 1
        if incident_id in self.refuse:
            raise self.refuse[incident_id]
        yield from self.logs.get(incident_id, [])


def test_fetching_the_history_reads_the_candidates_and_falls_back_on_a_403(frame):
    from clients.gitguardian import NotFound, PermissionDenied
    from tasks.weekly_report import fetch_report_history, history_of

    since, until = datetime(2026, 9, 28, tzinfo=UTC), W43.end.to_pydatetime()
    read = fetch_report_history.fn(LogClient(LOGS, {11: NotFound("gone")}), INCIDENTS, since,
                                   until, 100)
    assert read["status"] == "read" and read["failed"] == [11]
    assert set(read["logs"]) == set(read["candidates"].ids) - {11}
    assert read["requests"] == len(read["candidates"].ids)
    history = history_of(frame, read)
    assert history.method == "activity_logs" and "1 activity log(s) could not be read" in (
        history.note)

    first = read["candidates"].ids[0]
    refused = fetch_report_history.fn(LogClient(LOGS, {first: PermissionDenied("no")}), INCIDENTS,
                                      since, until, 100)
    assert refused["status"] == "forbidden" and refused["requests"] == 1
    assert "403" in history_of(frame, refused).note
    off = fetch_report_history.fn(LogClient(LOGS), INCIDENTS, since, until, 0)
    assert off["status"] == "off" and off["requests"] == 0
    assert "history_budget is 0" in history_of(frame, off).note
