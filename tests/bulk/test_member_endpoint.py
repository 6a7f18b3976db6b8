"""Offboarding lists a `member` or `restricted` person's incidents on their own member endpoint
(`/v1/members/{id}/secret-incidents`), a manager's or owner's with the assignee filter (their
endpoint lists every incident), and an incident merely shared with the leaver is never taken.
The safety reads of a one-person selection list only that person's incidents."""
from __future__ import annotations

from typing import Any

import pytest

from clients.gitguardian import GitGuardianClient
from flows.bulk_remediation import bulk_remediation
from tasks.decide.bulk_remediation import BulkAction, BulkRequest, BulkSelection
from tests.fixtures.harness import point_at_sandbox, run_plain

MEMBERS = [
    {"id": 1, "email": "Mia.Member@corp.example", "access_level": "member"},
    {"id": 2, "email": "rex.restricted@corp.example", "access_level": "restricted"},
    {"id": 3, "email": "max.manager@corp.example", "access_level": "manager"},
    {"id": 4, "email": "olivia.owner@corp.example", "access_level": "owner"},
]


def test_listings_use_the_member_endpoint_only_for_member_and_restricted_levels():
    selection = BulkSelection(status=["ASSIGNED"], detector_group_name="aws_iam", assignee_emails=[
        "mia.member@corp.example", "rex.restricted@corp.example", "max.manager@corp.example",
        "olivia.owner@corp.example", "gone@corp.example"])
    base = {"status": ["ASSIGNED"], "detector_group_name": "aws_iam"}
    assert selection.listings(MEMBERS) == [  # the addresses in sorted order
        (None, {**base, "assignee_email": "gone@corp.example"}),  # no member has it
        (None, {**base, "assignee_email": "max.manager@corp.example"}),  # sees every incident
        (1, {**base, "assignee_id": 1}),  # e-mails compared normalised
        (None, {**base, "assignee_email": "olivia.owner@corp.example"}),
        (2, {**base, "assignee_id": 2}),
    ]
    # members not listed (an action that does not need them): the assignee filter throughout
    assert all(member is None for member, _ in selection.listings(None))


def test_read_filters_are_the_one_listing_s_filters():
    one = BulkSelection(status=["ASSIGNED"], assignee_emails=["a@corp.example"],
                        api_filters={"ordering": "-date"})
    assert one.read_filters() == {"assignee_email": "a@corp.example"}
    two = BulkSelection(status=["ASSIGNED"], assignee_emails=["a@corp.example", "b@corp.example"])
    assert two.read_filters() == {}
    assert BulkSelection(severity=["high"]).read_filters() == {"severity": ["high"]}


def _assigned_to(box, member_id: int) -> list[int]:
    return sorted(i["id"] for i in box.store.incidents.values()
                  if i["status"] == "ASSIGNED" and i["assignee_id"] == member_id)


def _leaver(box, levels: tuple[str, ...], skip: set[int] = frozenset()) -> dict[str, Any]:
    return max((m for m in box.store.members.values() if m["access_level"] in levels
                and m.get("active", True) and m["id"] not in skip),
               key=lambda m: (len(_assigned_to(box, m["id"])), -m["id"]))


def _offboard(box, monkeypatch, tmp_path, emails: list[str], successor: str) -> dict[str, Any]:
    point_at_sandbox(monkeypatch, box, tmp_path / "ledger.sqlite")
    policy = BulkRequest(selection=BulkSelection(status=["ASSIGNED"], assignee_emails=emails),
                         action=BulkAction(kind="assign", assignee_email=successor),
                         reason="Offboarding: the assignees are leaving")
    # the flow's own body, without Prefect: the requests are the same
    return run_plain(bulk_remediation, policy=policy, dry_run=False, max_actions=500)


def test_offboarding_a_restricted_member_and_a_manager(fresh_sandbox, monkeypatch, tmp_path):
    box = fresh_sandbox
    restricted = _leaver(box, ("restricted",))
    manager = _leaver(box, ("manager",))
    successor = next(m["email"] for m in box.store.members.values() if m["access_level"] == "owner"
                     and m.get("active", True))
    held = _assigned_to(box, restricted["id"]) + _assigned_to(box, manager["id"])
    assert _assigned_to(box, restricted["id"]) and _assigned_to(box, manager["id"])
    # an incident someone else holds, shared with the restricted leaver: theirs to see, not to
    # hand over
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    shared = next(i for i in sorted(box.store.incidents) if box.store.incidents[i]["status"]
                  == "ASSIGNED" and i not in held)
    client.grant_access(shared, restricted["id"], permission="can_edit")
    assert shared in {i.id for i in client.member_incidents(restricted["id"])}

    result = _offboard(box, monkeypatch, tmp_path, [restricted["email"], manager["email"]],
                       successor)
    assert sorted(r["incident_id"] for r in result["plan"]) == sorted(held)
    assert result["counts"] == {"applied": len(held)}
    requests = result["requests"]
    assert requests["GET /v1/members/{id}/secret-incidents"] == 1  # the restricted leaver's
    after = box.state()["incidents"]
    assert {after[i]["assignee_email"] for i in held} == {successor}
    assert after[shared]["assignee_id"] == box.store.incidents[shared]["assignee_id"] != (
        restricted["id"])


@pytest.fixture
def bigger_sandbox():
    import sandbox

    with sandbox.running(seed=7, incidents=1200) as box:
        yield box


def test_one_person_s_safety_reads_list_only_their_incidents(bigger_sandbox, monkeypatch,
                                                              tmp_path):
    box = bigger_sandbox
    leaver = _leaver(box, ("member",))
    held = _assigned_to(box, leaver["id"])
    successor = next(m["email"] for m in box.store.members.values() if m["access_level"] == "owner"
                     and m.get("active", True))
    dates = [box.store.incidents[i]["date"] for i in held]
    in_window = [i for i in box.store.incidents.values() if i["status"] == "ASSIGNED"
                 and min(dates) <= i["date"] <= max(dates)]
    assert len(held) >= 3 and len(in_window) > 200  # unfiltered, the window takes 3+ pages
    result = _offboard(box, monkeypatch, tmp_path, [leaver["email"]], successor)
    assert result["counts"] == {"applied": len(held)}
    requests = result["requests"]
    # the selection on the member's endpoint; one listing of their incidents before the writes,
    # where the chunk's date window of every ASSIGNED incident would take several pages
    assert requests["GET /v1/members/{id}/secret-incidents"] == 1
    assert requests["GET /v1/incidents/secrets"] == 1
    assert requests.get("GET /v1/incidents/secrets/{id}", 0) == 0
