"""The project's GitGuardian client against the live sandbox over HTTP (seed 7 workspace).

Pagination to the end, filters re-checked on what comes back, every transition and its 409,
and the typed errors for 401, 403, 404 and 429 (retried after `Retry-After`, then success).
"""
from __future__ import annotations

import pytest

from clients.gitguardian import (
    AuthenticationError,
    Conflict,
    GitGuardianClient,
    NotFound,
    PermissionDenied,
)
from clients.retry import RetryPolicy


def client_for(box, token: str = "full", **kwargs) -> GitGuardianClient:
    return GitGuardianClient(box.url, box.tokens[token], requests_per_minute=None, **kwargs)


def by_status(box, status: str) -> list[dict]:
    return [i for i in box.workspace.incidents if i["status"] == status]


def test_incidents_paginate_to_the_end(sandbox):
    client = client_for(sandbox)
    pages = list(client.incidents(per_page=37).pages())
    assert all(len(page) == 37 for page in pages[:-1]) and 0 < len(pages[-1]) <= 37
    got = [incident.id for page in pages for incident in page]
    assert got == sorted(i["id"] for i in sandbox.workspace.incidents)
    assert client.request_counts["GET /v1/incidents/secrets"] == len(pages)


@pytest.mark.parametrize(
    "filters, keep",
    [
        ({"status": "TRIGGERED"}, lambda i: i["status"] == "TRIGGERED"),
        ({"status": ["RESOLVED", "IGNORED"]}, lambda i: i["status"] in ("RESOLVED", "IGNORED")),
        ({"severity": "critical"}, lambda i: i["severity"] == "critical"),
        ({"validity": "valid"}, lambda i: i["validity"] == "valid"),
        ({"tags": "TEST_FILE"}, lambda i: "TEST_FILE" in i["tags"]),
        ({"exclude_tags": "TEST_FILE"}, lambda i: "TEST_FILE" not in i["tags"]),
        ({"risk_score_min": 80}, lambda i: i["risk_score"] >= 80),
    ],
)
def test_incident_filters_through_the_client(sandbox, filters, keep):
    want = sorted(i["id"] for i in sandbox.workspace.incidents if keep(i))
    assert want
    assert [i.id for i in client_for(sandbox).incidents(**filters)] == want


def test_incidents_by_assignee_email(sandbox):
    assigned = [i for i in sandbox.workspace.incidents if i["assignee_email"]]
    email = assigned[0]["assignee_email"]
    want = sorted(i["id"] for i in sandbox.workspace.incidents if i["assignee_email"] == email)
    assert [i.id for i in client_for(sandbox).incidents(assignee_email=email)] == want


def test_occurrences_members_and_sources(sandbox):
    client = client_for(sandbox)
    busiest = max(sandbox.workspace.incidents, key=lambda i: i["occurrences_count"])
    occurrences = list(client.occurrences(incident_id=busiest["id"]))
    assert len(occurrences) == busiest["occurrences_count"]
    assert {o.incident_id for o in occurrences} == {busiest["id"]}
    assert len(list(client.occurrences())) == len(sandbox.workspace.occurrences)
    inactive = sorted(m["id"] for m in sandbox.workspace.members if not m["active"])
    assert [m.id for m in client.members(active=False)] == inactive
    assert len(list(client.members())) == len(sandbox.workspace.members)
    sources = list(client.sources())
    assert [s.id for s in sources] == sorted(s["id"] for s in sandbox.workspace.sources)
    source_id = sandbox.workspace.occurrences[0]["source"]["id"]
    want = sorted({o["incident_id"] for o in sandbox.workspace.occurrences
                   if o["source"]["id"] == source_id})
    assert [i.id for i in client.source_incidents(source_id)] == want


def test_token_info_and_health(sandbox):
    client = client_for(sandbox, "read")
    assert client.health() == "Valid API key."
    assert sorted(client.token_info().scopes) == ["incidents:read", "members:read"]


def test_every_transition_and_its_conflict(fresh_sandbox):
    box = fresh_sandbox
    client = client_for(box)
    member = next(m for m in box.workspace.members if m["active"])
    incident_id = by_status(box, "TRIGGERED")[0]["id"]

    assert client.assign(incident_id, member_id=member["id"]).status == "ASSIGNED"
    # to the current assignee: 200 again, as the real API (a second assignment)
    assert client.assign(incident_id, member_id=member["id"]).assignee_id == member["id"]
    assert client.unassign(incident_id).status == "TRIGGERED"
    with pytest.raises(Conflict):
        client.unassign(incident_id)
    resolved = client.resolve(incident_id, secret_revoked=True)
    assert resolved.status == "RESOLVED" and resolved.resolver_api_token_id
    with pytest.raises(Conflict):
        client.resolve(incident_id, secret_revoked=True)
    assert client.reopen(incident_id).status == "TRIGGERED"
    with pytest.raises(Conflict):
        client.reopen(incident_id)
    ignored = client.ignore(incident_id, reason="test_credential")
    assert ignored.status == "IGNORED" and ignored.ignore_reason == "test_credential"
    with pytest.raises(Conflict):
        client.ignore(incident_id, reason="low_risk")
    share = client.share(incident_id, lifespan_hours=1)
    assert share.incident_id == incident_id
    with pytest.raises(Conflict):
        client.share(incident_id)
    client.unshare(incident_id)
    with pytest.raises(Conflict):
        client.unshare(incident_id)
    note = client.add_note(incident_id, "checked by the sandbox test")
    assert client.update_note(incident_id, note.id, "edited").comment == "edited"
    assert [n.id for n in client.notes(incident_id)] == [note.id]
    with pytest.raises(PermissionDenied):
        client_for(box, "writer").delete_note(incident_id, note.id)
    client.delete_note(incident_id, note.id)
    events = [a.event_name for a in client.audit_logs()]
    assert events[:3] == ["secret_incident_note.deleted", "secret_incident_note.updated",
                          "secret_incident_note.created"]
    assert box.state()["incidents"][incident_id]["status"] == "IGNORED"


def test_typed_errors_for_401_403_404(sandbox):
    with pytest.raises(AuthenticationError):
        GitGuardianClient(sandbox.url, "sandbox-not-a-key", requests_per_minute=None).health()
    with pytest.raises(PermissionDenied):
        client_for(sandbox, "read").resolve(sandbox.workspace.incidents[0]["id"],
                                            secret_revoked=False)
    with pytest.raises(PermissionDenied):
        list(client_for(sandbox, "no_audit").audit_logs())
    with pytest.raises(NotFound):
        client_for(sandbox).incident(10_000_000)


def test_429_is_retried_after_retry_after_then_succeeds(fresh_sandbox):
    box = fresh_sandbox
    server_clock = [5000.0]
    box.set_adversity(rate_limit=2, clock=lambda: server_clock[0])
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # time passes for the server, not for the test
        slept.append(seconds)
        server_clock[0] += seconds

    client = client_for(box, retry=RetryPolicy(max_attempts=3, sleep=sleep))
    assert [client.health() for _ in range(3)] == ["Valid API key."] * 3
    assert slept == [60.0]
    assert client.request_counts["GET /v1/health"] == 4
