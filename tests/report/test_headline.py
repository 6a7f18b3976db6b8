"""The report's first screen: the six headline KPIs and their verdicts, the partial week, and
the incidents about to breach their SLA (tasks/report/outlook.py), on hand-built incidents."""
from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from tasks.report import frames, kpis, outlook
from tasks.report.frames import Window
from tasks.sla import DEFAULT_SLA_DAYS

W43 = Window(2026, 43, "UTC")  # Mon 2026-10-19 00:00 UTC .. Mon 2026-10-26 00:00 UTC
END = pd.Timestamp("2026-10-26T00:00:00Z")
URL = "https://dashboard.gitguardian.com/workspace/9/incidents/{}"


def incident(id, date, status="TRIGGERED", severity="medium", **fields):
    return {"id": id, "date": date, "status": status, "severity": severity,
            "detector": {"name": "generic", "display_name": "Generic"},
            "gitguardian_url": URL.format(id), **fields}


# SLA: critical 1 day, high 7, medium 30, low 90. Measured from the week's end (10-26 00:00).
OUTLOOK = [
    # high, opened 10-20 12:00: due 10-27 12:00, 1.5 days left: listed.
    incident(1, "2026-10-20T12:00:00Z", severity="high"),
    # medium, opened 09-28: due 10-28, 2 days left: listed.
    incident(2, "2026-09-28T00:00:00Z", "ASSIGNED", assignee_email="bob@corp.example"),
    # medium, opened 09-20: due 10-20, already past its SLA: a breach, not "about to".
    incident(3, "2026-09-20T00:00:00Z"),
    # low, opened 08-01: due 10-30, 4 days left: listed.
    incident(4, "2026-08-01T00:00:00Z", severity="low"),
    # medium, opened 10-20: due 11-19, 24 days left: not within 7 days.
    incident(5, "2026-10-20T00:00:00Z"),
    # info: no SLA, never listed.
    incident(6, "2026-07-01T00:00:00Z", severity="info"),
    # high, opened 10-24, closed 10-25: closed before the week's end, not listed.
    incident(7, "2026-10-24T00:00:00Z", "RESOLVED", "high", resolved_at="2026-10-25T00:00:00Z"),
    # critical, opened 10-25 12:00: due 10-26 12:00, 0.5 day left: listed first.
    incident(8, "2026-10-25T12:00:00Z", severity="critical"),
    # high, opened 10-19 00:00: due exactly 10-26 00:00, 0 days left: breached at the end.
    incident(9, "2026-10-19T00:00:00Z", severity="high"),
    # medium, opened 10-03 00:00: due exactly 11-02 00:00 = 7 days left: listed (inclusive).
    incident(10, "2026-10-03T00:00:00Z"),
]


def test_about_to_breach_lists_what_reaches_its_sla_in_the_next_seven_days():
    frame = frames.incidents_frame(OUTLOOK)
    found = outlook.about_to_breach(frame, END, DEFAULT_SLA_DAYS)
    assert found["id"].tolist() == [8, 1, 2, 4, 10]  # soonest first
    assert found["days_left"].tolist() == [0.5, 1.5, 2.0, 4.0, 7.0]
    assert found["sla_days"].tolist() == [1, 7, 30, 90, 30]
    assert found.loc[found["id"] == 2, "assignee_email"].item() == "bob@corp.example"
    assert found.loc[found["id"] == 1, "gitguardian_url"].item() == URL.format(1)
    assert found.loc[found["id"] == 1, "due"].item() == pd.Timestamp("2026-10-27T12:00:00Z")
    # A custom SLA and a shorter horizon change the answer.
    assert outlook.about_to_breach(frame, END, {"medium": 30}, within_days=3)["id"].tolist() == [2]


def test_add_outlook_measures_from_now_in_a_partial_week():
    frame = frames.incidents_frame(OUTLOOK)
    weekly = kpis.compute(frame, W43, trend_weeks=2)
    sla = DEFAULT_SLA_DAYS
    outlook.add_outlook(weekly, frame, sla, datetime(2026, 11, 3, tzinfo=UTC))
    assert weekly.tables["about_to_breach"]["id"].tolist() == [8, 1, 2, 4, 10]  # week over: its end
    # On Friday 10-23 12:00: 7 and 8 are not opened yet, 3 is past its SLA, 10 is 9.5 days away,
    # 9 (high, opened 10-19) is due 10-26 00:00: 2.5 days left.
    outlook.add_outlook(weekly, frame, sla, datetime(2026, 10, 23, 12, tzinfo=UTC))
    table = weekly.tables["about_to_breach"]
    assert table["id"].tolist() == [9, 1, 2, 4]
    assert table["days_left"].tolist() == [2.5, 4.0, 4.5, 6.5]


def test_partial_week():
    assert outlook.partial_week(W43, datetime(2026, 10, 26, tzinfo=UTC)) is None
    assert outlook.partial_week(W43, datetime(2026, 11, 30, tzinfo=UTC)) is None
    assert outlook.partial_week(W43, datetime(2026, 10, 21, 12, tzinfo=UTC)) == 2.5
    assert outlook.partial_week(W43, pd.Timestamp("2026-10-19T00:00:00Z")) == 0.0


def test_headline_is_six_kpis_with_a_verdict_each():
    # W43 opens 1, 5, 7, 8 and 9 (at the week's first instant); W42 opens none.
    frame = frames.incidents_frame(OUTLOOK)
    weekly = kpis.compute(frame, W43, trend_weeks=2)
    rows = outlook.headline(weekly)
    assert [r["key"] for r in rows] == ["backlog", "opened", "closed", "sla_breaches",
                                        "time_to_close_median_days", "publicly_exposed_open"]
    by_key = {r["key"]: r for r in rows}
    opened = by_key["opened"]
    assert (opened["value"], opened["previous"]) == (5, 0)
    assert opened["change"] == 5 and opened["verdict"] == "worse"  # more incidents: worse
    closed = by_key["closed"]
    assert (closed["value"], closed["previous"], closed["verdict"]) == (1, 0, "better")
    assert by_key["publicly_exposed_open"]["verdict"] == "same"
    assert by_key["time_to_close_median_days"]["verdict"] is None  # no closure the week before


def test_a_partial_week_measures_breaches_and_ages_now_not_at_its_end():
    # Friday 10-23 12:00, W43 not over. Incident 11 (high, opened 10-18) is due 10-25 00:00:
    # between now and the week's end, so not a breach yet, and 5.5 days old (0-7 days) where
    # the week's end says 8 (8-30 days). Incident 3 (medium, due 10-20) is a breach either way,
    # open 33.5 days now (36 at the week's end).
    late = incident(11, "2026-10-18T00:00:00Z", severity="high")
    frame = frames.incidents_frame(OUTLOOK + [late])
    now = datetime(2026, 10, 23, 12, tzinfo=UTC)
    at_end = kpis.compute(frame, W43, trend_weeks=2)
    assert at_end.sla_breaches["id"].tolist() == [11, 3]  # measured at the week's end
    assert at_end.kpis["backlog_by_age"]["8-30 days"]["value"] == 3  # 2, 10 and 11
    weekly = kpis.compute(frame, W43, trend_weeks=2, now=now)
    assert weekly.measured_at == pd.Timestamp(now)
    assert weekly.sla_breaches["id"].tolist() == [3]
    assert weekly.sla_breaches["days"].tolist() == [33.5]
    assert weekly.kpis["sla_breaches"]["value"] == 1
    assert weekly.kpis["sla_breaches_by_severity"]["high"]["value"] == 0
    assert weekly.kpis["backlog_by_age"]["8-30 days"]["value"] == 2  # 2 and 10; 11 is 0-7
    assert int(weekly.backlog_aging.loc["high", "8-30 days"]) == 0
    assert int(weekly.backlog_aging.loc["high", "0-7 days"]) == 3  # 1, 9 and 11
    # The previous week is over: measured at its end either way.
    assert weekly.kpis["sla_breaches"]["previous"] == at_end.kpis["sla_breaches"]["previous"]
    # A `now` after the week's end changes nothing.
    later = kpis.compute(frame, W43, trend_weeks=2,
                           now=datetime(2026, 11, 3, tzinfo=UTC))
    assert later.sla_breaches["id"].tolist() == [11, 3] and later.measured_at == END
