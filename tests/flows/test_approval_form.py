"""The approval form's summary and the approved plan's restriction (tasks/approval.py), as plain
functions; the whole approval through a real server: tests/deployments/test_approval.py."""
from __future__ import annotations

from datetime import UTC, datetime

from tasks import approval
from tasks.decide.plan import Action, Decision, Plan, Skip

BULK = "bulk-remediation"


def _decision(incident_id: int, action: Action, arguments: dict, reason: str) -> Decision:
    return Decision(BULK, incident_id, action, arguments, reason, "evidence")


PLAN = Plan(BULK, (
    _decision(1, Action.ASSIGN, {"member_id": 1253, "send_email": True}, "bulk_assign_manager"),
    _decision(2, Action.ASSIGN, {"member_id": 77, "send_email": True}, "bulk_assign_successor"),
    _decision(3, Action.IGNORE, {"ignore_reason": "false_positive"}, "bulk_ignore"),
    _decision(4, Action.ASSIGN, {"email": "dana_x@corp.example"}, "bulk_assign_manager"),
), (Skip(9, "already_done"),))


def test_the_summary_counts_by_action_and_reason_and_names_people_by_e_mail():
    text = approval.describe(
        PLAN, max_actions=2, deadline=datetime(2026, 12, 7, 6, 0, tzinfo=UTC),
        timeout_hours=24, emails={1253: "mia@corp.example", 77: "sam@corp.example"},
        run_url="http://127.0.0.1:4200/runs/flow-run/abc")
    assert "4 writes planned by bulk-remediation, above this run's limit of 2" in text
    assert "| assign | bulk\\_assign\\_manager | 2 |" in text
    assert "| ignore | bulk\\_ignore | 1 |" in text
    assert "to mia@corp.example" in text and "to sam@corp.example" in text
    assert "dana\\_x@corp.example" in text  # Markdown-escaped, not markup
    assert "1253" not in text and "member" not in text
    assert "as false\\_positive" in text
    assert "`bulk-remediation-plan`" in text
    assert "(http://127.0.0.1:4200/runs/flow-run/abc?tab=Artifacts)" in text
    assert "2026-12-07 06:00 UTC" in text


def test_only_approved_decisions_stay_and_the_others_wait_for_the_next_run():
    approved = {PLAN.decisions[0].decision_id, PLAN.decisions[2].decision_id}
    restricted = approval.restrict(PLAN, approved)
    assert [d.incident_id for d in restricted.decisions] == [1, 3]
    skipped = {s.incident_id: s.reason for s in restricted.skips}
    assert skipped == {9: "already_done", 2: approval.NOT_IN_APPROVED_PLAN,
                       4: approval.NOT_IN_APPROVED_PLAN}


def test_the_form_asks_for_a_decision_and_a_reason():
    schema = approval.ApprovalInput.model_json_schema()
    assert set(schema["properties"]) == {"approve", "reason"}
    assert schema["required"] == ["reason"]
    assert schema["properties"]["approve"]["default"] is False
