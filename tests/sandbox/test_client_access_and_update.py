"""The client's incident update and access grants against the running sandbox: each call's
effect read back through the API (incident, member incidents, incident members, activity)."""
from __future__ import annotations

from clients.gitguardian import GitGuardianClient


def client_for(box) -> GitGuardianClient:
    return GitGuardianClient(box.url, box.token, requests_per_minute=None)


def test_update_incident_sets_severity_and_replaces_custom_tags(fresh_sandbox):
    client = client_for(fresh_sandbox)
    incident = next(i for i in client.incidents(status="TRIGGERED") if i.severity != "critical")
    previous = incident.severity

    answer = client.update_incident(incident.id, severity="critical")
    assert answer.severity == "critical" == client.incident(incident.id).severity

    tags = [{"key": "env", "value": "prod"}, {"key": "owner", "value": None}]
    client.update_incident(incident.id, custom_tags=tags)
    read = client.incident(incident.id)
    assert [(t.key, t.value) for t in read.custom_tags] == [("env", "prod"), ("owner", None)]
    assert read.severity == "critical"  # a tags-only update leaves the severity alone

    client.update_incident(incident.id, custom_tags=[{"key": "env", "value": "dev"}])
    assert [(t.key, t.value) for t in client.incident(incident.id).custom_tags] == [
        ("env", "dev")]
    assert [i.id for i in client.incidents(custom_tag_value="dev")].count(incident.id) == 1
    client.update_incident(incident.id, custom_tags=[])
    assert client.incident(incident.id).custom_tags == []

    log = list(client.activity_logs(incident.id))
    severities = [e.content.data for e in log if e.key == "SET_SEVERITY"]
    assert severities == [{"severity": "critical", "previous_severity": previous}]
    assert [e.key for e in log].count("SET_CUSTOM_TAGS") == 3


def test_grant_and_revoke_access_show_in_member_incidents_and_incident_members(fresh_sandbox):
    client = client_for(fresh_sandbox)
    member = next(m for m in client.members() if m.access_level in ("member", "restricted")
                  and m.active is not False)
    seen = {i.id for i in client.member_incidents(member.id)}
    incident = next(i for i in client.incidents() if i.id not in seen)
    assert member.id not in {m.member_id for m in client.incident_members(incident.id)}

    granted = client.grant_access(incident.id, member.id, permission="can_view")
    assert (granted.member_id, granted.incident_id, granted.incident_permission) == (
        member.id, incident.id, "can_view")
    assert {i.id for i in client.member_incidents(member.id)} == seen | {incident.id}
    rows = {m.member_id: m for m in client.incident_members(incident.id)}
    assert rows[member.id].incident_permission == "can_view"

    client.grant_access(incident.id, member.id, permission="full_access")  # replaces
    rows = {m.member_id: m for m in client.incident_members(incident.id)}
    assert rows[member.id].incident_permission == "full_access"

    client.revoke_access(incident.id, member.id)
    assert {i.id for i in client.member_incidents(member.id)} == seen
    assert member.id not in {m.member_id for m in client.incident_members(incident.id)}
    log = [e for e in client.activity_logs(incident.id)
           if e.key in ("GRANT_ACCESS", "REMOVE_ACCESS")]
    assert [(e.key, e.content.data) for e in log] == [
        ("GRANT_ACCESS", {"users": [member.id]}), ("GRANT_ACCESS", {"users": [member.id]}),
        ("REMOVE_ACCESS", {"users": [member.id]})]
