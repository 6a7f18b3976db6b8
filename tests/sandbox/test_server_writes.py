"""Sandbox writes over raw HTTP: the incident state machine, shares, notes, audit log, events,
adversity and the state snapshot. Each test gets its own server (writes never leak)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

import sandbox
from tests.sandbox.workspace_builder import build_workspace

CONFLICT = {"detail": "Request conflicts with existing data."}
# Builder facts: status by id % 4 -> 0 TRIGGERED, 1 ASSIGNED (to member 2), 2 RESOLVED, 3 IGNORED
TRIGGERED, ASSIGNED, RESOLVED, IGNORED = 4, 5, 6, 7


@pytest.fixture
def box() -> Iterator[sandbox.Sandbox]:
    with sandbox.running(workspace=build_workspace(12)) as running_box:
        yield running_box


def call(box, method: str, path: str, token: str = "full", **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Token {box.tokens[token]}"}
    return requests.request(method, box.url + path, headers=headers, timeout=10, **kwargs)


def act(box, incident_id: int, action: str, token: str = "full", **kwargs: Any):
    return call(box, "POST", f"/v1/incidents/secrets/{incident_id}/{action}", token, **kwargs)


def status_of(box, incident_id: int) -> str:
    return box.state()["incidents"][incident_id]["status"]


# ---------------------------------------------------------------- the state machine


def test_assign_reassign_and_conflicts(box):
    first = act(box, TRIGGERED, "assign", json={"email": "Mia.Member@corp.example"})
    assert first.status_code == 200
    body = first.json()
    assert (body["status"], body["assignee_id"], body["assignee_email"]) == (
        "ASSIGNED", 3, "mia.member@corp.example")
    assert body["occurrences"] is None
    again = act(box, TRIGGERED, "assign", params={"send_email": "false"}, json={"member_id": 2})
    assert again.status_code == 200 and again.json()["assignee_id"] == 2
    for closed in (RESOLVED, IGNORED):
        response = act(box, closed, "assign", json={"member_id": 3})
        assert response.status_code == 409 and response.json() == CONFLICT


def assign_entries(box, incident_id: int) -> list[dict]:
    return [a for a in box.state()["audit_logs"]
            if a["event_name"] == "secret_incident.assigned"
            and a["target_ids"] == [str(incident_id)]]


def test_assigning_to_the_current_assignee_answers_200_and_assigns_again(box):
    """As the real API: a second assign to the same member is a second assignment (and e-mail)."""
    first = act(box, TRIGGERED, "assign", json={"member_id": 3})
    second = act(box, TRIGGERED, "assign", json={"email": "mia.member@corp.example"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert (second.json()["status"], second.json()["assignee_id"]) == ("ASSIGNED", 3)
    entries = assign_entries(box, TRIGGERED)
    assert len(entries) == 2
    assert [e["data"] for e in entries] == [{"assignee_id": 3}, {"assignee_id": 3}]


def test_strict_reassign_keeps_the_old_409_on_request():
    with sandbox.running(workspace=build_workspace(12), strict_reassign=True) as strict:
        assert act(strict, TRIGGERED, "assign", json={"member_id": 3}).status_code == 200
        assert act(strict, TRIGGERED, "assign", json={"member_id": 3}).json() == CONFLICT
        assert act(strict, TRIGGERED, "assign", json={"member_id": 2}).status_code == 200
        assert len(assign_entries(strict, TRIGGERED)) == 2


def test_assign_refuses_unknown_inactive_and_ambiguous_targets(box):
    assert act(box, TRIGGERED, "assign", json={"email": "nobody@corp.example"}).status_code == 404
    assert act(box, TRIGGERED, "assign", json={"member_id": 5}).status_code == 404  # inactive
    assert act(box, TRIGGERED, "assign", json={}).status_code == 400
    both = act(box, TRIGGERED, "assign", json={"member_id": 3, "email": "mia.member@corp.example"})
    assert both.status_code == 400
    assert act(box, 9999, "assign", json={"member_id": 3}).status_code == 404
    assert status_of(box, TRIGGERED) == "TRIGGERED"


def test_assign_accepts_a_form_body(box):
    response = act(box, TRIGGERED, "assign", data={"member_id": "4"})
    assert response.status_code == 200 and response.json()["assignee_id"] == 4


def test_unassign(box):
    response = act(box, ASSIGNED, "unassign")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["assignee_id"]) == ("TRIGGERED", None)
    assert act(box, ASSIGNED, "unassign").json() == CONFLICT
    assert act(box, TRIGGERED, "unassign").status_code == 409


def test_unassigning_a_closed_incident_keeps_its_status(box):
    """GitGuardian: "Unassigning a resolved incident will not update the status"."""
    act(box, TRIGGERED, "assign", json={"member_id": 3})
    act(box, TRIGGERED, "resolve", json={"secret_revoked": True})
    response = act(box, TRIGGERED, "unassign")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["assignee_id"], body["assignee_email"]) == (
        "RESOLVED", None, None)
    assert body["resolved_at"] and body["secret_revoked"] is True
    assert act(box, TRIGGERED, "unassign").status_code == 409  # nobody left to unassign


def test_resolve_without_secret_revoked_is_accepted(box):
    response = act(box, TRIGGERED, "resolve", json={})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["secret_revoked"]) == ("RESOLVED", False)


def test_the_self_hosted_prefix_serves_the_same_api(box):
    response = call(box, "GET", "/exposed/v1/incidents/secrets", params={"per_page": 2})
    assert response.status_code == 200 and len(response.json()) == 2
    assert "/exposed/v1/incidents/secrets?" in response.headers["link"]
    assert call(box, "GET", "/exposed/v1/health").json() == {"detail": "Valid API key."}
    assert act(box, TRIGGERED, "unassign").status_code == 409
    written = call(box, "POST", f"/exposed/v1/incidents/secrets/{TRIGGERED}/assign",
                   json={"member_id": 3})
    assert written.status_code == 200 and status_of(box, TRIGGERED) == "ASSIGNED"


def test_resolve_records_the_token_and_refuses_closed(box):
    assert act(box, TRIGGERED, "resolve", json={"secret_revoked": "perhaps"}).status_code == 400
    response = act(box, TRIGGERED, "resolve", token="writer", json={"secret_revoked": True})
    assert response.status_code == 200
    body = response.json()
    writer = box.workspace.tokens[[t.name for t in box.workspace.tokens].index("writer")]
    assert body["status"] == "RESOLVED" and body["secret_revoked"] is True
    assert body["resolver_api_token_id"] == writer.id and body["resolver_id"] == writer.member_id
    assert body["resolved_at"].endswith("Z")
    assert act(box, TRIGGERED, "resolve", json={"secret_revoked": False}).json() == CONFLICT
    assert act(box, IGNORED, "resolve", json={"secret_revoked": False}).status_code == 409


def test_ignore_needs_a_known_reason_and_records_the_ignorer(box):
    assert act(box, ASSIGNED, "ignore", json={}).status_code == 400
    assert act(box, ASSIGNED, "ignore", json={"ignore_reason": "boring"}).status_code == 400
    response = act(box, ASSIGNED, "ignore", data={"ignore_reason": "test_credential"})
    body = response.json()
    assert (body["status"], body["ignore_reason"]) == ("IGNORED", "test_credential")
    assert body["ignorer_api_token_id"] == box.store.authenticate(box.token).id
    assert body["ignored_at"] is not None
    assert act(box, ASSIGNED, "ignore", json={"ignore_reason": "low_risk"}).json() == CONFLICT


def test_reopen_goes_back_to_assigned_or_triggered(box):
    act(box, ASSIGNED, "resolve", json={"secret_revoked": False})
    reopened = act(box, ASSIGNED, "reopen").json()
    assert reopened["status"] == "ASSIGNED" and reopened["resolved_at"] is None
    assert reopened["resolver_id"] is None
    unassigned = act(box, IGNORED, "reopen").json()
    assert unassigned["status"] == "TRIGGERED" and unassigned["ignore_reason"] is None
    assert act(box, TRIGGERED, "reopen").json() == CONFLICT


# ---------------------------------------------------------------- share


def test_share_then_conflict_then_unshare(box):
    response = act(box, TRIGGERED, "share", json={"lifespan": 2, "auto_healing": True})
    assert response.status_code == 200
    share = response.json()
    assert set(share) == {"share_url", "incident_id", "feedback_collection", "auto_healing",
                          "token", "expire_at", "revoked_at"}
    assert share["auto_healing"] is True and share["feedback_collection"] is True
    assert box.state()["incidents"][TRIGGERED]["share_url"] == share["share_url"]
    assert act(box, TRIGGERED, "share", json={}).json() == CONFLICT
    unshared = act(box, TRIGGERED, "unshare")
    assert unshared.status_code == 204 and unshared.content == b""
    assert box.state()["incidents"][TRIGGERED]["share_url"] is None
    assert act(box, TRIGGERED, "unshare").status_code == 409


# ---------------------------------------------------------------- notes


def test_notes_create_list_edit_delete_and_ownership(box):
    path = f"/v1/incidents/secrets/{TRIGGERED}/notes"
    assert call(box, "POST", path, json={"comment": ""}).status_code == 400
    assert call(box, "POST", path, json={"comment": "x" * 10_001}).status_code == 400
    created = call(box, "POST", path, json={"comment": "Looking into it"})
    assert created.status_code == 201
    note = created.json()
    assert note["updated_at"] is None and note["incident_id"] == TRIGGERED
    call(box, "POST", path, token="writer", data={"comment": "second opinion"})
    assert [n["comment"] for n in call(box, "GET", path).json()] == [
        "Looking into it", "second opinion"]
    assert len(call(box, "GET", path, params={"search": "OPINION"}).json()) == 1
    note_path = f"{path}/{note['id']}"
    refused = call(box, "PATCH", note_path, token="writer", json={"comment": "mine now"})
    assert refused.status_code == 403 and refused.json() == {"detail": "Permission denied."}
    assert call(box, "DELETE", note_path, token="writer").status_code == 403
    edited = call(box, "PATCH", note_path, json={"comment": "Rotated"}).json()
    assert edited["comment"] == "Rotated" and edited["updated_at"] is not None
    assert call(box, "DELETE", note_path).status_code == 204
    assert call(box, "DELETE", note_path).status_code == 404
    assert call(box, "POST", path, token="read", json={"comment": "no"}).status_code == 403


# ---------------------------------------------------------------- audit log


def test_every_write_appends_an_audit_entry(box):
    act(box, TRIGGERED, "assign", json={"member_id": 3})
    act(box, TRIGGERED, "resolve", token="writer", json={"secret_revoked": True})
    act(box, IGNORED, "reopen")
    act(box, IGNORED, "share", json={})
    act(box, IGNORED, "unshare")
    call(box, "POST", f"/v1/incidents/secrets/{ASSIGNED}/notes", json={"comment": "hi"})
    act(box, ASSIGNED, "unassign")
    act(box, ASSIGNED, "ignore", json={"ignore_reason": "false_positive"})
    act(box, RESOLVED, "resolve", json={"secret_revoked": True})  # 409: no entry
    logs = call(box, "GET", "/v1/audit_logs", params={"per_page": 100}).json()
    assert [entry["event_name"] for entry in logs] == [
        "secret_incident.ignored", "secret_incident.unassigned", "secret_incident_note.created",
        "incident_token.revoked", "incident_token.created", "secret_incident.reopened",
        "secret_incident.resolved", "secret_incident.assigned"]
    assert logs[-1]["target_ids"] == [str(TRIGGERED)] and logs[-1]["action_type"] == "UPDATE"
    writer_id = box.store.authenticate(box.tokens["writer"]).id
    by_writer = call(box, "GET", "/v1/audit_logs", params={"api_token_id": writer_id}).json()
    assert [e["event_name"] for e in by_writer] == ["secret_incident.resolved"]
    shares = call(box, "GET", "/v1/audit_logs",
                  params={"event_name": "incident_token.created"}).json()
    assert len(shares) == 1 and shares[0]["action_type"] == "CREATE"
    # as recorded: the target is the share link's token, the incident is in data.issue_id
    assert shares[0]["data"]["issue_id"] == IGNORED
    assert shares[0]["target_ids"] != [str(IGNORED)] and shares[0]["data"]["expire_at"]
    assert shares[0]["member_email"] == "olivia.owner@corp.example"
    assert box.state()["audit_logs"][-1]["event_name"] == "secret_incident.ignored"


# ---------------------------------------------------------------- events


def test_events_make_things_happen(box):
    created = box.events.new_incident(author_email="new.dev@corp.example", severity="critical")
    listed = call(box, "GET", "/v1/incidents/secrets", params={"severity": "critical",
                                                               "per_page": 100}).json()
    assert created["id"] in [i["id"] for i in listed]
    occurrences = call(box, "GET", "/v1/occurrences/secrets",
                       params={"incident_id": created["id"]}).json()
    assert [o["author_info"] for o in occurrences] == ["new.dev@corp.example"]

    box.events.new_occurrence(RESOLVED, filepath="src/new.py")
    regressed = call(box, "GET", f"/v1/incidents/secrets/{RESOLVED}").json()
    assert regressed["status"] in ("ASSIGNED", "TRIGGERED") and regressed["regression"] is True
    box.events.new_occurrence(IGNORED)
    assert status_of(box, IGNORED) == "IGNORED"  # ignored incidents never reopen

    box.events.set_validity(TRIGGERED, "invalid")
    assert call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}").json()["validity"] == "invalid"
    box.events.deactivate_member(3)
    assert call(box, "GET", "/v1/members/3").json()["active"] is False
    assert act(box, TRIGGERED, "assign", json={"member_id": 3}).status_code == 404


def test_state_is_a_deep_copy_and_the_workspace_keeps_its_generated_values(box):
    state = box.state()
    state["incidents"][TRIGGERED]["status"] = "IGNORED"
    assert status_of(box, TRIGGERED) == "TRIGGERED"
    act(box, TRIGGERED, "ignore", json={"ignore_reason": "low_risk"})
    box.events.deactivate_member(3)
    assert status_of(box, TRIGGERED) == "IGNORED"
    made = {i["id"]: i for i in box.workspace.incidents}
    assert made[TRIGGERED]["status"] == "TRIGGERED"
    assert [m["active"] for m in box.workspace.members if m["id"] == 3] == [True]


# ---------------------------------------------------------------- adversity


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_per_token_with_retry_after(box):
    clock = FakeClock()
    box.set_adversity(rate_limit=3, clock=clock)
    codes = [call(box, "GET", "/v1/health").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = call(box, "GET", "/v1/health")
    assert refused.headers["Retry-After"] == "60" and "detail" in refused.json()
    assert call(box, "GET", "/v1/health", token="read").status_code == 200  # per token
    clock.now += 45.5
    assert call(box, "GET", "/v1/health").headers["Retry-After"] == "15"  # whole seconds
    clock.now += 15
    assert call(box, "GET", "/v1/health").status_code == 200


def test_faults_are_5xx_and_503_says_maintenance(box):
    box.set_adversity(faults=1.0, seed=3)
    responses = [call(box, "GET", "/v1/health") for _ in range(12)]
    assert {r.status_code for r in responses} == {500, 502, 503}
    for response in responses:
        assert "detail" in response.json()
        assert (response.headers.get("X-Maintenance") == "true") == (response.status_code == 503)


def test_faults_are_deterministic_from_the_seed(box):
    def run() -> list[int]:
        box.set_adversity(faults=0.5, seed=11)
        return [call(box, "GET", "/v1/health").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 200 in first and any(code >= 500 for code in first)


def test_resets_drop_the_connection(box):
    box.set_adversity(resets=1.0)
    with pytest.raises(requests.ConnectionError):
        call(box, "GET", "/v1/health")
    box.set_adversity()
    assert call(box, "GET", "/v1/health").status_code == 200


def test_latency_is_part_of_each_fate_and_answers_still_come():
    from sandbox.adversity import Adversity

    fate = Adversity(latency_ms=150).decide("Token k")
    assert fate.delay_seconds == 0.15 and fate.status is None and not fate.reset


def test_latency_still_answers(box):
    box.set_adversity(latency_ms=20)
    assert call(box, "GET", "/v1/health").status_code == 200


def test_paging_a_filter_while_changing_its_items_skips_none(box):
    """Keyset cursors: assigning TRIGGERED incidents while paging through them loses none."""
    triggered = sorted(i["id"] for i in box.workspace.incidents if i["status"] == "TRIGGERED")
    seen: list[int] = []
    response = call(box, "GET", "/v1/incidents/secrets",
                    params={"status": "TRIGGERED", "per_page": 1})
    while True:
        for incident in response.json():
            seen.append(incident["id"])
            act(box, incident["id"], "assign", json={"member_id": 3})
        next_url = response.links.get("next", {}).get("url")
        if not next_url:
            break
        response = requests.get(next_url, headers={"Authorization": f"Token {box.token}"},
                                timeout=10)
    assert seen == triggered and len(seen) >= 3


def test_api_keys_never_show_in_reprs(box):
    for name, secret in box.tokens.items():
        assert secret not in repr(box)
        assert secret not in repr(box.store.authenticate(secret)), name
