"""The escalation stage per incident in the weekly report, with real parts: the SLA ladder runs
for real (the sandbox API over HTTP, the test slapd, a local Prefect server, a ledger in tmp),
twice, a fortnight apart; then the weekly report reads the same ledger. Each incident listed in
the SLA breaches and the about-to-breach list carries the last rung the ledger says was done,
and the rung counts agree with the ledger over the open incidents.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.sla.test_sla_escalation_e2e import monday_ten

pytestmark = [pytest.mark.slapd, pytest.mark.prefect, pytest.mark.slow]

PLAYBOOK = "sla-escalation"


def test_the_report_shows_each_incidents_last_rung_as_the_ledger_has_it(playbook_env, tmp_path):
    from flows.sla_escalation import sla_escalation
    from flows.weekly_report import weekly_report
    from tasks.decide.sla_escalation import SlaEscalationPolicy
    from tasks.report import frames
    from tasks.sla import DEFAULT_SLA_DAYS

    box = playbook_env.sandbox
    policy = SlaEscalationPolicy(security_lead_email="security-lead@corp.example",
                                 escalate_after_days=20, outbox_dir=str(tmp_path / "outbox"))
    first = monday_ten(box)

    def escalate(now):
        state = sla_escalation(policy=policy, dry_run=False, max_actions=1000, now=now,
                               return_state=True)
        assert state.is_completed(), state.message

    escalate(first)  # a Monday, 10:00: working hours
    # The incidents the report will list as about to breach (their SLA ends in the next 7
    # days) are mostly unassigned: no one to tell. A person hands them to an owner the ladder
    # has told before, so the next run (an hour later) tells them too.
    owner = next(a.arguments["assignee"] for a in playbook_env.ledger().applied(PLAYBOOK)
                 if a.arguments["sla_stage"].startswith("approaching")
                 and a.arguments.get("assignee"))
    real_now = datetime.now(UTC)
    for incident in box.state()["incidents"].values():
        days = DEFAULT_SLA_DAYS.get(incident.get("severity") or "unknown")
        if incident["status"] not in ("TRIGGERED", "ASSIGNED") or not days or not incident["date"]:
            continue
        due = datetime.fromisoformat(incident["date"].replace("Z", "+00:00")) + timedelta(days)
        if real_now + timedelta(hours=1) < due < real_now + timedelta(days=6):
            box.human.assign(incident["id"], owner)
    escalate(first + timedelta(hours=1))
    escalate(first + timedelta(days=14))  # a fortnight later: rungs climb

    # The ledger's last rung per incident, read here directly (applied: oldest first).
    applied = playbook_env.ledger().applied(PLAYBOOK)
    last = {a.incident_id: a.arguments["sla_stage"] for a in applied}
    rungs_seen = Counter(a.incident_id for a in applied)
    assert {"breached", "escalated"} <= set(last.values())
    assert any(r.startswith("approaching") for r in last.values())
    assert any(n > 1 for n in rungs_seen.values()), "the second run climbed some incidents"

    current = frames.Window(*datetime.now(UTC).isocalendar()[:2])
    result = weekly_report(week=current.label, output_dir=str(tmp_path / "reports"))
    files = {name: Path(path) for name, path in result["files"].items()}
    document = json.loads(files["kpis.json"].read_text())

    breaches = document["sla_breaches"]
    outlook = document["about_to_breach"]
    assert breaches and outlook
    for row in breaches + outlook:
        assert row["escalation"] == last.get(row["id"]), row
    assert sum(1 for row in breaches if row["escalation"]) > 10
    assert any(row["escalation"] for row in outlook)
    climbed = [row for row in breaches if rungs_seen.get(row["id"], 0) > 1]
    assert climbed, "a breach whose incident had two rungs: the report shows the later one"

    open_ids = [i["id"] for i in box.state()["incidents"].values()
                if i["status"] in ("TRIGGERED", "ASSIGNED")]
    expected = Counter(last.get(i, "(none)") for i in open_ids)
    assert document["escalation_by_rung"] == dict(expected)
    assert list(document["escalation_by_rung"])[-1] == "(none)"

    markdown = files["report.md"].read_text()
    assert "## SLA escalation" in markdown
    assert "| assignee | escalation |" in markdown  # the breach and outlook tables' last column
    html = files["report.html"].read_text()
    assert 'id="sla-escalation"' in html and "<th>escalation</th>" in html
    for rung, count in expected.items():
        assert f"<tr><td>{rung}</td><td>{count}</td></tr>" in html
