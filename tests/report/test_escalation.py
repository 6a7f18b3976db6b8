"""The SLA ladder's rungs in the weekly report (tasks/report/): each incident's last rung done
by the time the week is measured, on its breaches and about-to-breach rows, and the open
incidents counted per rung; rendered in Markdown, HTML and CSV (tasks/report/)."""
from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from tasks.report import files, frames, html_page, kpis, outlook, render
from tasks.report.frames import Window
from tasks.sla import DEFAULT_SLA_DAYS

W43 = Window(2026, 43, "UTC")  # Mon 2026-10-19 .. Mon 2026-10-26 00:00 UTC


def incident(id, date, severity="medium", status="TRIGGERED"):
    return {"id": id, "date": date, "status": status, "severity": severity,
            "detector": {"name": "generic"}}


def rung(incident_id, stage, cycle, at, **more):
    """An applied decision of the ladder, as `Ledger.applied` gives it."""
    return {"incident_id": incident_id, "at": at, "decision_id": f"d{incident_id}{stage}",
            "action": "note", "arguments": {"sla_stage": stage, "cycle": cycle, **more}}


INCIDENTS = [
    incident(1, "2026-09-01T00:00:00Z"),  # medium: breached on 10-01
    incident(2, "2026-09-01T00:00:00Z"),
    incident(3, "2026-10-01T00:00:00Z"),  # medium: SLA ends 10-31, about to breach
    incident(4, "2026-09-01T00:00:00Z"),  # breached, no rung done
    incident(5, "2026-09-01T00:00:00Z", status="RESOLVED"),
]
APPLIED = [
    rung(1, "approaching_50", 1, "2026-09-16T10:00:00Z"),
    rung(1, "breached", 1, "2026-10-02T10:00:00Z"),
    rung(1, "escalated", 1, "2026-10-12T10:00:00Z"),
    # 2: escalated, then reassigned by a person: a new cycle's first rung is its last.
    rung(2, "escalated", 1, "2026-10-12T10:00:00Z"),
    rung(2, "breached", 2, "2026-10-20T10:00:00Z"),
    rung(3, "approaching_50", 1, "2026-10-16T10:00:00Z"),
    rung(3, "approaching_90", 1, "2026-10-27T10:00:00Z"),  # after the week: not yet done
    rung(5, "breached", 1, "2026-10-02T10:00:00Z"),  # closed since: not open, not counted
    {"incident_id": 4, "at": "2026-10-02T10:00:00Z", "arguments": {"email": "x@corp.example"}},
]


def weekly(now=None):
    frame = frames.incidents_frame(INCIDENTS)
    result = kpis.compute(frame, W43, trend_weeks=2, now=now,
                            escalations=frames.escalation_frame(APPLIED))
    return outlook.add_outlook(result, frame, DEFAULT_SLA_DAYS,
                              now or datetime(2026, 11, 2, tzinfo=UTC))


def test_escalation_frame_keeps_the_ladders_rungs_only():
    frame = frames.escalation_frame(APPLIED)
    assert len(frame) == 8 and 4 not in frame["incident_id"].tolist()


def test_each_incident_shows_its_last_rung_done_by_the_weeks_end():
    w = weekly()
    assert dict(zip(w.sla_breaches["id"], w.sla_breaches["escalation"])) == {
        1: "escalated", 2: "breached", 4: None}
    outlook = w.tables["about_to_breach"]
    assert outlook["id"].tolist() == [3]
    assert outlook["escalation"].tolist() == ["approaching_50"]  # approaching_90 came later
    counts = dict(zip(w.tables["escalation_rungs"]["rung"],
                      w.tables["escalation_rungs"]["incidents"]))
    assert list(counts) == ["approaching_50", "breached", "escalated", "(none)"]
    assert counts == {"approaching_50": 1, "breached": 1, "escalated": 1, "(none)": 1}


def test_a_partial_week_shows_the_rungs_done_by_now():
    w = weekly(datetime(2026, 10, 20, 12, tzinfo=UTC))
    found = dict(zip(w.sla_breaches["id"], w.sla_breaches["escalation"]))
    assert found[2] == "breached" and found[1] == "escalated"
    w = weekly(datetime(2026, 10, 20, 9, tzinfo=UTC))  # before 2's new cycle
    assert dict(zip(w.sla_breaches["id"], w.sla_breaches["escalation"]))[2] == "escalated"


def test_no_ledger_leaves_the_column_blank_and_counts_none():
    frame = frames.incidents_frame(INCIDENTS)
    w = kpis.compute(frame, W43, trend_weeks=2)
    assert w.sla_breaches["escalation"].isna().all()
    assert w.tables["escalation_rungs"].to_dict("records") == [{"rung": "(none)", "incidents": 4}]


def test_rendered_in_markdown_html_csv_and_json():
    import json

    w = weekly()
    after = datetime(2026, 11, 2, tzinfo=UTC)
    text = render.markdown(w, after)
    assert "| detector | assignee | escalation |" in text
    assert "## SLA escalation" in text and "| escalated | 1 |" in text
    assert "| approaching\\_50 | 1 |" in text
    page = html_page.html_page(w, chart_images={}, generated_at=after)
    assert page.count("<th>escalation</th>") == 2  # the breaches and the about-to-breach list
    assert "<tr><td>(none)</td><td>1</td></tr>" in page
    assert "<td>escalated</td>" in page
    rows = render.breach_rows(w)
    assert {r["escalation"] for r in rows} == {"escalated", "breached", ""}
    csv = pd.read_csv(pd.io.common.StringIO(files.incidents_csv(w)))
    assert dict(zip(csv["id"], csv["escalation"].fillna(""))) == {
        1: "escalated", 2: "breached", 3: "approaching_50", 4: ""}  # 5: not in the week
    document = json.loads(files.kpis_json(w, after))
    assert document["escalation_by_rung"]["(none)"] == 1
