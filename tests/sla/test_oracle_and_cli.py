"""The ladder's plan on the seeded sandbox workspace against an independent computation from
the incidents' dates and severities and the SLA table; and its command line."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tasks.sla import DEFAULT_SLA_DAYS

pytestmark = [pytest.mark.slapd, pytest.mark.prefect, pytest.mark.slow]

RECIPIENT_REASONS = {"no_recipient", "no_manager", "assignee_departed", "directory_error",
                     "manager_lookup_error", "author_lookup_error"}


def oracle(incident: dict, now: datetime, thresholds=(0.5, 0.9), escalate_after=3.0):
    """The rung an incident is at, computed again from its date, severity and the SLA table."""
    if incident["status"] not in ("TRIGGERED", "ASSIGNED"):
        return None
    days = DEFAULT_SLA_DAYS.get(incident["severity"])
    if days is None:
        return None
    opened = datetime.fromisoformat(incident["date"].replace("Z", "+00:00"))
    age = (now - opened).total_seconds() / 86400
    if age > days + escalate_after:
        return "escalated"
    if age > days:
        return "breached"
    reached = [t for t in thresholds if age >= t * days]
    return f"approaching_{round(reached[-1] * 100)}" if reached else None


@pytest.mark.parametrize("hours_after", [10, 24 * 3 + 10, 24 * 40 + 10])
def test_planned_stages_equal_an_independent_computation(playbook_env, hours_after):
    from flows.sla_escalation import sla_escalation
    from tasks.decide.sla_escalation import SlaEscalationPolicy

    box = playbook_env.sandbox
    now = box.workspace.now.astimezone(UTC) + timedelta(hours=hours_after)
    policy = SlaEscalationPolicy(quiet_weekends=False, quiet_hours_start="00:00",
                                 quiet_hours_end="00:00")
    result = sla_escalation(policy=policy, dry_run=True, max_actions=10_000, now=now)
    expected = {i["id"]: rung for i in box.workspace.incidents
                if (rung := oracle(i, now)) is not None}
    planned = {p["incident_id"]: p["reason"] for p in result["plan"]}
    skipped = {s["incident_id"]: s["reason"] for s in result["skipped"]}
    assert expected and planned
    for incident_id, rung in planned.items():
        assert expected.get(incident_id) == rung
    for incident_id in expected:
        assert incident_id in planned or skipped[incident_id] in RECIPIENT_REASONS
    # Everything else open is left alone for having no SLA or not being due yet.
    for incident_id, reason in skipped.items():
        if incident_id not in expected:
            assert reason in ("no_sla", "not_due")
    # Each stage goes where it should: owner, manager, security.
    for row in result["plan"]:
        notify = json.loads(row["arguments"])["notify"]
        if row["reason"] == "escalated":
            assert notify == ["security"]
        elif row["reason"] == "breached":
            assert "the manager of" in row["evidence"] and notify[0] in row["evidence"]
        else:
            assert notify[0] in row["evidence"]


def test_the_command_line_dry_run_prints_the_plan(playbook_env, capsys):
    from flows.sla_escalation import main

    with pytest.raises(SystemExit) as help_exit:
        main(["--help"])
    assert help_exit.value.code == 0
    out = capsys.readouterr().out
    assert "--people-blocks" in out and "--reassign-to-manager" in out
    code = main(["--dry-run", "--max-actions", "5000", "--no-quiet-weekends",
                 "--quiet-hours-start", "00:00", "--quiet-hours-end", "00:00"])
    out = capsys.readouterr().out
    assert code == 0 and "sla-escalation dry run" in out and "would_apply" in out
