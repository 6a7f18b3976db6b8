"""Issue 13: bulk offboarding (`to_manager`) when the directory cannot tell who the manager is.

Before, a failed manager lookup was read as "no manager": every incident went to the named
successor (8 of 8 in the report). Now each is skipped as `manager_lookup_error` and nothing is
written; the named successor is only for people the directory answers have no active manager.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from clients.directory import DirectorySettings
from tasks.bulk_remediation import managers_of
from tasks.decide.bulk_remediation import decide_bulk_remediation
from tests.bulk.test_bulk_remediation_e2e import (
    _directory_json,
    _offboarding_people,
    active_member,
    request,
    run,
    use,  # noqa: F401 - a fixture
)
from tests.decide.test_lookup_failures import PEOPLE, export_json
from tests.fixtures.factories import incident, member
from tests.fixtures.failing_directory import FailurePlan, failing_directory

NOW = datetime(2026, 6, 1, tzinfo=UTC)
OFFBOARD = {"kind": "assign", "to_manager": True, "assignee_email": "fred@corp.example"}
# In PEOPLE, alice's manager is mike; ben has none.
HELD = [incident(i, status="ASSIGNED", assignee_email="alice@corp.example") for i in range(1, 9)]
MEMBERS = [member(1, "mike@corp.example"), member(2, "fred@corp.example")]


def _manager_entry_search(number: int, base: str, search_filter: str) -> bool:
    return search_filter == "(objectClass=*)"  # the read of a manager's entry by its DN


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return export_json(PEOPLE, tmp_path_factory.mktemp("directory") / "people.json")


def offboard(export, failures: FailurePlan, held=HELD):
    bulk = request({"status": ["ASSIGNED"],
                    "assignee_emails": sorted({i.assignee_email for i in held})}, OFFBOARD)
    with failing_directory(export, failures, DirectorySettings()) as directory:
        managers = managers_of.fn(directory, sorted({i.assignee_email for i in held}))
    return decide_bulk_remediation(held, {}, bulk, now=NOW, managers=managers, members=MEMBERS)


def test_a_healthy_directory_sends_every_incident_to_the_manager(export):
    plan = offboard(export, FailurePlan())
    assert [d.reason for d in plan.decisions] == ["bulk_assign_manager"] * 8
    assert {d.arguments["member_id"] for d in plan.decisions} == {1}


@pytest.mark.parametrize(
    "failures",
    [FailurePlan(when=_manager_entry_search), FailurePlan(only=frozenset({1})),
     FailurePlan(from_search=1, kind="timeout")],
    ids=["manager's entry fails", "assignee's entry fails", "every search times out"],
)
def test_a_failed_manager_lookup_never_sends_an_incident_to_the_named_successor(export, failures):
    plan = offboard(export, failures)
    assert failures.failed
    assert plan.decisions == ()  # before: 8 of 8 to fred, the named successor
    assert [(s.incident_id, s.reason) for s in plan.skips] == [
        (i, "manager_lookup_error") for i in range(1, 9)]
    assert all("alice@corp.example" in s.evidence for s in plan.skips)


def test_the_named_successor_still_takes_what_has_no_manager(export):
    held = [*HELD[:2], incident(9, status="ASSIGNED", assignee_email="ben@corp.example")]
    plan = offboard(export, FailurePlan(when=_manager_entry_search), held=held)
    assert [(d.incident_id, d.reason) for d in plan.decisions] == [(9, "bulk_assign_successor")]
    assert [(s.incident_id, s.reason) for s in plan.skips] == [
        (1, "manager_lookup_error"), (2, "manager_lookup_error")]


@pytest.mark.prefect
def test_offboarding_run_with_the_manager_lookup_failing_writes_nothing(
    use, fresh_sandbox, monkeypatch, tmp_path,  # noqa: F811 - use is the fixture imported above
):
    from tasks import enrich

    use(fresh_sandbox)
    workspace = fresh_sandbox.workspace
    path = _directory_json(workspace, tmp_path / "directory.json")
    monkeypatch.setenv("DIRECTORY_JSON", str(path))
    failures = FailurePlan(when=_manager_entry_search)
    monkeypatch.setattr(enrich, "directory_from_settings",
                        lambda: failing_directory(path, failures, DirectorySettings()))
    leaver, manager, _ = _offboarding_people(workspace)
    successor = active_member(workspace, skip={leaver, manager})
    held = sorted(i["id"] for i in workspace.incidents if i["status"] == "ASSIGNED"
                  and (i["assignee_email"] or "").strip().casefold() == leaver)
    assert held
    before = fresh_sandbox.state()
    policy = request({"status": ["ASSIGNED"], "assignee_emails": [leaver]},
                     {"kind": "assign", "to_manager": True, "assignee_email": successor})
    state, result = run(policy, dry_run=False)
    assert state.is_completed(), result
    assert failures.failed
    assert result["plan"] == []
    assert sorted((s["incident_id"], s["reason"]) for s in result["skipped"]) == [
        (i, "manager_lookup_error") for i in held]
    after = fresh_sandbox.state()
    assert after["incidents"] == before["incidents"]
    assert after["audit_logs"] == before["audit_logs"]
    assert successor.casefold() not in json.dumps(result["skipped"]).casefold()
