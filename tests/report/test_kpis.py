"""Weekly report KPIs on a hand-built data set; every expected number is worked out in comments."""
from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from tasks.report import frames, kpis
from tasks.report.frames import Window

OUR_TOKEN = "00000000-0000-4000-8000-00000000c0de"
W43 = Window(2026, 43, "UTC")  # Mon 2026-10-19 00:00 UTC .. Mon 2026-10-26 00:00 UTC
END = "2026-10-26T00:00:00Z"


def incident(id, date, status="TRIGGERED", severity="medium", **fields):
    detector = fields.pop("detector", "Generic Password")
    return {"id": id, "date": date, "status": status, "severity": severity,
            "detector": {"name": detector.lower(), "display_name": detector}, **fields}


# At the week's end (2026-10-26 00:00 UTC) the open ones are 1-8 and 13.
INCIDENTS = [
    # age 6 days -> 0-7; critical SLA 1 day: overdue. Public by tag.
    incident(1, "2026-10-20T00:00:00Z", severity="critical", validity="valid",
             detector="AWS Keys", tags=["PUBLICLY_EXPOSED"]),
    # age exactly 8 days -> 8-30; high SLA 7: overdue. Held by an inactive member.
    incident(2, "2026-10-18T00:00:00Z", "ASSIGNED", "high", validity="invalid",
             assignee_id=11, assignee_email="old@corp.example"),
    # age exactly 7 days -> 0-7; opened at the week's first instant.
    incident(3, "2026-10-19T00:00:00Z", detector="GitHub Token"),
    # age exactly 30 -> 8-30. Assignee no longer a member: departed.
    incident(4, "2026-09-26T00:00:00Z", "ASSIGNED", "low", assignee_id=99,
             assignee_email="gone@corp.example"),
    # age 31 -> 31-90. Public: leaked outside the perimeter.
    incident(5, "2026-09-25T00:00:00Z", severity="low",
             public_exposure={"leaked_outside_perimeter": True}),
    # age 90 -> 31-90; info has no SLA. Public: the source is a public repository.
    incident(6, "2026-07-28T00:00:00Z", severity="info",
             public_exposure={"source_publicly_visible": True}),
    # age 91 -> over 90; a severity the API may add one day: kept, no SLA.
    incident(7, "2026-07-27T00:00:00Z", severity="catastrophic"),
    # no date, no severity: unknown age, "unknown" severity, never "opened".
    incident(8, None, severity=None),
    # closed in the week by our token after 0.5 day, revoked.
    incident(9, "2026-10-19T12:00:00Z", "RESOLVED", "critical", resolved_at="2026-10-20T00:00:00Z",
             secret_revoked=True, resolver_api_token_id=OUR_TOKEN, detector="AWS Keys"),
    # ignored on 10-05, reopened, resolved on 10-21: counts once, in W43, after 20 days (late).
    incident(10, "2026-10-01T00:00:00Z", "RESOLVED", "high", ignored_at="2026-10-05T00:00:00Z",
             resolved_at="2026-10-21T00:00:00Z", secret_revoked=False),
    # ignored in the week by our token after 12 days.
    incident(11, "2026-10-10T00:00:00Z", "IGNORED", ignored_at="2026-10-22T00:00:00Z",
             ignore_reason="test_credential", ignorer_api_token_id=OUR_TOKEN),
    # ignored the week before (W42) after 3 days.
    incident(12, "2026-10-12T00:00:00Z", "IGNORED", "low", ignored_at="2026-10-15T00:00:00Z",
             ignore_reason="false_positive"),
    # reopened: open, with a stale resolved_at in the week that must not count as a closure.
    incident(13, "2026-10-02T00:00:00Z", "ASSIGNED", resolved_at="2026-10-20T00:00:00Z",
             validity="no_checker", assignee_id=12, assignee_email="alice@corp.example"),
    # resolved with no closing date: opened in the week, closed at an unknown time.
    incident(14, "2026-10-20T00:00:00Z", "RESOLVED", "high", resolved_at=None, secret_revoked=True,
             detector="Slack"),
]
MEMBERS = [
    {"id": 11, "email": "old@corp.example", "name": "Old", "active": False},
    {"id": 12, "email": "alice@corp.example", "name": "Alice", "active": True},
]
LEDGER = [
    {
        "playbook": "departed",
        "action": "assign",
        "result": "applied",
        "incident_id": 2,
        "at": "2026-10-20T10:00:00Z",
    },
    {
        "playbook": "departed",
        "action": "assign",
        "result": "applied",
        "incident_id": 4,
        "at": "2026-10-21T10:00:00Z",
    },
    {
        "playbook": "departed",
        "action": "assign",
        "result": "failed",
        "incident_id": 5,
        "at": "2026-10-21T11:00:00Z",
    },
    {
        "playbook": "departed",
        "action": "assign",
        "result": "applied",
        "incident_id": 6,
        "at": "2026-10-14T10:00:00Z",
    },
]
OCCURRENCES = [
    {
        "incident_id": 1,
        "date": "2026-10-20T00:00:00Z",
        "source": {"id": 1, "full_name": "acme/api"},
    },
    {
        "incident_id": 1,
        "date": "2026-10-20T00:00:00Z",
        "source": {"id": 1, "full_name": "acme/api"},
    },
    {
        "incident_id": 1,
        "date": "2026-10-20T00:00:00Z",
        "source": {"id": 2, "full_name": "acme/web"},
    },
    {
        "incident_id": 9,
        "date": "2026-10-19T12:00:00Z",
        "source": {"id": 1, "full_name": "acme/api"},
    },
    {
        "incident_id": 3,
        "date": "2026-10-19T00:00:00Z",
        "source": {"id": 2, "full_name": "acme/web"},
    },
    {
        "incident_id": 2,
        "date": "2026-10-18T00:00:00Z",
        "source": {"id": 1, "full_name": "acme/api"},
    },
]
AUDIT = [
    {
        "date": "2026-10-20T00:00:00Z",
        "event_name": "secret_incident.resolved",
        "action_type": "UPDATE",
        "api_token_id": OUR_TOKEN,
    },
    {
        "date": "2026-10-21T00:00:00Z",
        "event_name": "secret_incident.assigned",
        "action_type": "UPDATE",
        "api_token_id": None,
    },
    {
        "date": "2026-10-22T00:00:00Z",
        "event_name": "secret_incident.ignored",
        "action_type": "UPDATE",
        "api_token_id": None,
    },
    {
        "date": "2026-10-13T00:00:00Z",
        "event_name": "secret_incident.assigned",
        "action_type": "UPDATE",
        "api_token_id": None,
    },
]


@pytest.fixture(scope="module")
def weekly() -> kpis.WeeklyReport:
    return kpis.compute(
        frames.incidents_frame(INCIDENTS),
        W43,
        members=frames.members_frame(MEMBERS),
        occurrences=frames.occurrences_frame(OCCURRENCES),
        audit=frames.audit_frame(AUDIT),
        ledger=frames.ledger_frame(LEDGER),
        token_id=OUR_TOKEN,
        trend_weeks=4,
    )


def value(kpi):
    return kpi["value"], kpi["previous"], kpi["change"]


# ------------------------------------------------------------------------------------- weeks


def test_paris_week_across_the_end_of_summer_time_lasts_169_hours():
    week = Window(2026, 43, "Europe/Paris")  # DST ends Sunday 2026-10-25 03:00 CEST
    assert week.start == pd.Timestamp("2026-10-18T22:00:00Z")  # Monday 00:00 CEST
    assert week.end == pd.Timestamp("2026-10-25T23:00:00Z")  # next Monday 00:00 CET
    assert week.end - week.start == pd.Timedelta(hours=169)


def test_paris_week_across_the_start_of_summer_time_lasts_167_hours():
    week = Window(2026, 13, "Europe/Paris")  # DST starts Sunday 2026-03-29 02:00 CET
    assert week.start == pd.Timestamp("2026-03-22T23:00:00Z")
    assert week.end == pd.Timestamp("2026-03-29T22:00:00Z")
    assert week.end - week.start == pd.Timedelta(hours=167)


def test_the_same_incidents_fall_in_different_weeks_by_time_zone():
    frame = frames.incidents_frame(
        [
            incident(1, "2026-10-18T21:59:59Z"),  # Paris Sun 23:59:59 CEST (W42); UTC Sunday (W42)
            incident(2, "2026-10-18T22:30:00Z"),  # Paris Mon 00:30 CEST (W43); UTC Sunday (W42)
            incident(3, "2026-10-25T22:30:00Z"),  # Paris Sun 23:30 CET (W43); UTC Sunday (W43)
            incident(4, "2026-10-25T23:10:00Z"),  # Paris Mon 00:10 CET (W44); UTC Sunday (W43)
            incident(5, "2026-10-25T23:30:00Z"),  # Paris Mon 00:30 CET (W44); UTC Sunday (W43)
        ]
    )
    paris = kpis.compute(frame, Window(2026, 43, "Europe/Paris"), trend_weeks=2)
    utc = kpis.compute(frame, Window(2026, 43, "UTC"), trend_weeks=2)
    assert value(paris.kpis["opened"]) == (2, 1, 1)  # {2, 3}; before: {1}
    assert value(utc.kpis["opened"]) == (3, 2, 1)  # {3, 4, 5}; before: {1, 2}


def test_last_complete_week_depends_on_the_time_zone():
    now = datetime(2026, 10, 25, 23, 30, tzinfo=UTC)  # Paris: Monday 00:30
    assert frames.last_complete_week(now, "Europe/Paris").label == "2026-W43"
    assert frames.last_complete_week(now, "UTC").label == "2026-W42"
    assert frames.last_complete_week(datetime(2027, 1, 4, 9, tzinfo=UTC)).label == "2026-W53"


def test_parse_week_and_previous_across_a_year_end():
    assert frames.parse_week("2027-W01").previous().label == "2026-W53"
    assert frames.parse_week("2026w05", "Europe/Paris") == Window(2026, 5, "Europe/Paris")
    with pytest.raises(ValueError):
        frames.parse_week("2025-W53")  # 2025 has 52 ISO weeks


def test_age_buckets_boundaries():
    days = pd.Series([0, 7, 8, 30, 31, 90, 91, float("nan")])
    assert kpis.age_bucket(days).tolist() == [
        "0-7 days",
        "0-7 days",
        "8-30 days",
        "8-30 days",
        "31-90 days",
        "31-90 days",
        "over 90 days",
        "unknown",
    ]


# -------------------------------------------------------------------------------- the week


def test_opened_counts_incidents_dated_in_the_week(weekly):
    # W43: 1, 3 (first instant), 9, 14 (closed at an unknown time); W42: 2, 12. 8 has no date.
    assert value(weekly.kpis["opened"]) == (4, 2, 2)


def test_closed_split_and_reopened_incidents_count_once(weekly):
    k = weekly.kpis
    # 9 and 10 resolved, 11 ignored; 13's stale resolved_at and 14's missing date do not count.
    assert value(k["closed"]) == (3, 1, 2)
    assert value(k["resolved"]) == (2, 0, 2)
    assert value(k["resolved_revoked"]) == (1, 0, 1)
    assert value(k["resolved_not_revoked"]) == (1, 0, 1)
    assert value(k["ignored"]) == (1, 1, 0)
    assert value(k["ignored_by_reason"]["test_credential"]) == (1, 0, 1)
    assert value(k["ignored_by_reason"]["false_positive"]) == (0, 1, -1)


def test_backlog_by_severity_and_age(weekly):
    k = weekly.kpis
    # end of W43: 1-8 and 13. End of W42 (10-19 00:00): 2, 4-8, 10, 11 (closed later), 13.
    assert value(k["backlog"]) == (9, 9, 0)
    by_severity = {s: v["value"] for s, v in k["backlog_by_severity"].items()}
    assert by_severity == {
        "critical": 1,
        "high": 1,
        "medium": 2,
        "low": 2,
        "info": 1,
        "unknown": 1,
        "catastrophic": 1,
    }
    by_age = {b: v["value"] for b, v in k["backlog_by_age"].items()}
    assert by_age == {
        "0-7 days": 2,
        "8-30 days": 3,
        "31-90 days": 2,
        "over 90 days": 1,
        "unknown": 1,
    }
    assert list(weekly.backlog_aging.index[:6]) == [
        "critical",
        "high",
        "medium",
        "low",
        "info",
        "unknown",
    ]
    assert weekly.backlog_aging.loc["catastrophic", "over 90 days"] == 1


def test_time_to_close_median_and_90th_percentile(weekly):
    k = weekly.kpis
    # W43 closures took 0.5, 20 and 12 days: median 12; p90 = 12 + 0.8 * (20 - 12) = 18.4.
    assert value(k["time_to_close_median_days"]) == (12.0, 3.0, 9.0)
    assert k["time_to_close_p90_days"]["value"] == pytest.approx(18.4)
    assert k["time_to_close_by_severity"]["critical"]["median_days"]["value"] == 0.5
    assert k["time_to_close_by_severity"]["high"]["median_days"]["value"] == 20.0
    assert k["time_to_close_by_severity"]["low"]["median_days"]["previous"] == 3.0


def test_sla_breaches_list_the_incidents(weekly):
    breaches = weekly.sla_breaches
    # open past SLA: 1 (6 days > 1), 2 (8 > 7); closed late: 10 (20 > 7).
    assert sorted(breaches["id"]) == [1, 2, 10]
    assert dict(zip(breaches["id"], breaches["kind"])) == {
        1: "open past SLA",
        2: "open past SLA",
        10: "closed late",
    }
    assert {s: v["value"] for s, v in weekly.kpis["sla_breaches_by_severity"].items()} == {
        "critical": 1,
        "high": 2,
        "medium": 0,
        "low": 0,
    }
    # W42 end: 10 (high, open then) is 18 days old: past its 7 days; 2 is 1 day old, 4 is 23
    # days old with 90 allowed, 11 and 13 (medium) are 9 and 17 days old; nothing closed late.
    assert value(weekly.kpis["sla_breaches"]) == (3, 1, 2)


def test_custom_sla_days():
    frame = frames.incidents_frame(INCIDENTS)
    custom = kpis.compute(frame, W43, sla_days={"low": 30, "catastrophic": 10}, trend_weeks=2)
    # low: 4 is 30 days old (not past), 5 is 31 (past); catastrophic: 7 is 91 days old.
    assert sorted(custom.sla_breaches["id"]) == [5, 7]


def test_top_detectors_and_sources(weekly):
    assert weekly.kpis["top_detectors"] == [
        {"detector": "AWS Keys", "incidents": 2, "previous": 0, "change": 2},
        {"detector": "GitHub Token", "incidents": 1, "previous": 0, "change": 1},
        {"detector": "Slack", "incidents": 1, "previous": 0, "change": 1},
    ]
    # distinct incidents per source: acme/api {1, 9}, acme/web {1, 3}; W42: acme/api {2}.
    assert weekly.kpis["top_sources"] == [
        {"source": "acme/api", "incidents": 2, "previous": 1, "change": 1},
        {"source": "acme/web", "incidents": 2, "previous": 0, "change": 2},
    ]


def test_assignees_inactive_and_departed(weekly):
    rows = {
        r["assignee"]: (r["open_incidents"], r["member_status"])
        for r in weekly.kpis["open_per_assignee"]
    }
    assert rows == {
        "old@corp.example": (1, "inactive"),
        "gone@corp.example": (1, "departed"),
        "alice@corp.example": (1, "active"),
    }
    assert value(weekly.kpis["held_by_inactive_or_departed"]) == (2, 2, 0)


def test_validity_mix_and_public_exposure(weekly):
    validity = {v: k["value"] for v, k in weekly.kpis["backlog_by_validity"].items()}
    assert validity == {"valid": 1, "invalid": 1, "no_checker": 1, "unknown": 6}
    # 1 (tag), 5 (leaked outside the perimeter), 6 (public repository)
    assert value(weekly.kpis["publicly_exposed_open"]) == (3, 2, 1)
    assert sorted(weekly.tables["publicly_exposed"]["id"]) == [1, 5, 6]


def test_automation_by_playbook_and_our_share_of_closures(weekly):
    assert weekly.automation.to_dict("records") == [
        {
            "playbook": "departed",
            "action": "assign",
            "result": "applied",
            "count": 2,
            "previous": 1,
            "change": 1,
        },
        {
            "playbook": "departed",
            "action": "assign",
            "result": "failed",
            "count": 1,
            "previous": 0,
            "change": 1,
        },
    ]
    assert value(weekly.kpis["automated_closures"]) == (2, 0, 2)  # 9 and 11
    assert weekly.kpis["automated_closure_share"]["value"] == pytest.approx(0.667)
    assert weekly.notes == []


def test_audit_log_of_the_week(weekly):
    audit = weekly.kpis["audit_log"]
    assert value(audit["events"]) == (3, 1, 2)
    assert value(audit["events_by_our_token"]) == (1, 0, 1)


def test_trends_per_week(weekly):
    rows = weekly.trends.set_index("week")
    assert list(rows.index) == ["2026-W40", "2026-W41", "2026-W42", "2026-W43"]
    assert rows.loc["2026-W43", "opened"] == 4 and rows.loc["2026-W43", "closed"] == 3
    assert rows.loc["2026-W42", "closed"] == 1 and rows.loc["2026-W43", "backlog"] == 9
    # W41 (10-05..10-12): 10 was ignored on 10-05 then reopened: the data shows no closure there.
    assert rows.loc["2026-W41", "closed"] == 0


def test_an_empty_week_and_missing_sources():
    frame = frames.incidents_frame(
        [incident(1, "2025-01-01T00:00:00Z", "RESOLVED", resolved_at="2025-01-02T00:00:00Z")]
    )
    empty = kpis.compute(frame, W43, audit=None, ledger=None, trend_weeks=3)
    k = empty.kpis
    assert value(k["opened"]) == (0, 0, 0) and value(k["closed"]) == (0, 0, 0)
    assert value(k["backlog"]) == (0, 0, 0)
    assert k["time_to_close_median_days"]["value"] is None
    assert k["automated_closure_share"]["value"] is None
    assert k["top_detectors"] == [] and k["top_sources"] == [] and k["audit_log"] is None
    assert empty.sla_breaches.empty and empty.automation.empty
    assert any("No automation recorded" in n for n in empty.notes)


def test_no_incidents_at_all():
    nothing = kpis.compute(frames.incidents_frame([]), W43, trend_weeks=2)
    assert nothing.kpis["backlog"]["value"] == 0 and len(nothing.trends) == 2


def test_models_with_attributes_work_like_dicts():
    from clients.models import Incident

    model = Incident.model_validate(
        {**INCIDENTS[8], "detector": {"name": "aws", "display_name": "AWS Keys"}}
    )
    from_model = frames.incidents_frame([model])
    from_dict = frames.incidents_frame([INCIDENTS[8]])
    pd.testing.assert_frame_equal(from_model, from_dict, check_dtype=False)
