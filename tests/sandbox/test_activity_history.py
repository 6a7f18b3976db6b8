"""Activity logs tell an incident's history: its generated past, then every write, ours or a
person's (`box.human`), as typed, dated entries, paginated like the other lists."""
from __future__ import annotations

from clients.gitguardian import GitGuardianClient


def client_for(box) -> GitGuardianClient:
    return GitGuardianClient(box.url, box.token, requests_per_minute=None)


def keys(entries) -> list[str]:
    return [e.key for e in entries]


def test_the_generated_past_is_in_the_log_in_date_order(sandbox):
    client = client_for(sandbox)
    incidents = sorted(sandbox.workspace.incidents, key=lambda i: i["id"])
    chosen = {}
    for status in ("TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"):
        chosen.update({i["id"]: i for i in
                       [i for i in incidents if i["status"] == status][:8]})
    chosen.update({i["id"]: i for i in incidents if i.get("regression")})
    reopened = reassigned = 0
    for incident_id, incident in chosen.items():
        log = list(client.activity_logs(incident_id))
        moments = [e.created_at for e in log]
        assert moments == sorted(moments), incident_id
        assert log[0].key == "TRIGGER"
        assert log[0].created_at == client.incident(incident_id).triggered_at
        assignments = [e.content.data["assignees"] for e in log if e.key == "ASSIGN"]
        if incident.get("assignee_id") is not None:
            assert assignments and assignments[-1] == [incident["assignee_id"]], incident_id
            reassigned += len(assignments) > 1
        else:
            assert assignments == []
        if "UNRESOLVE" in keys(log):
            reopened += 1
            at = keys(log).index("UNRESOLVE")
            assert keys(log)[at - 1] == "RESOLVE"
        if incident.get("regression"):
            assert "UNRESOLVE" in keys(log), incident_id
        closing = {"RESOLVED": ("RESOLVE", "resolved_at", "resolver_id"),
                   "IGNORED": ("IGNORE", "ignored_at", "ignorer_id")}.get(incident["status"])
        if closing:
            key, moment, who = closing
            assert log[-1].key == key, incident_id
            assert log[-1].created_at == getattr(client.incident(incident_id), moment)
            if incident.get(who) is not None:
                assert log[-1].member is not None and log[-1].member.id == incident[who]
        else:
            assert not {"RESOLVE", "IGNORE"} & set(keys(log)[-1:]), incident_id
    assert reopened and reassigned  # the sample holds reopenings and reassignments


def test_every_write_adds_a_typed_dated_entry_paginated(fresh_sandbox):
    box = fresh_sandbox
    client = client_for(box)
    ours = client.token_info().id
    incident_id = min(i["id"] for i in box.workspace.incidents if i["status"] == "TRIGGERED")
    members = [m for m in box.workspace.members
               if m.get("active", True) and m.get("access_level") in ("owner", "manager")]
    before = list(client.activity_logs(incident_id))

    client.assign(incident_id, email=members[0]["email"])
    client.unassign(incident_id)
    client.resolve(incident_id, secret_revoked=True)
    client.reopen(incident_id)
    client.ignore(incident_id, reason="test_credential")
    client.reopen(incident_id)
    note = client.add_note(incident_id, "checked by the playbook")
    client.update_note(incident_id, note.id, "checked again")
    client.share(incident_id)
    human_note = box.human.add_note(incident_id, "seen by a person")
    box.human.assign(incident_id, members[0]["email"])

    log = list(client.activity_logs(incident_id))
    assert log[:len(before)] == before
    added = log[len(before):]
    assert keys(added) == ["ASSIGN", "UNASSIGN", "RESOLVE", "UNRESOLVE", "IGNORE", "REOPEN",
                           "ADD_NOTE", "EDIT_NOTE", "SHARE", "ADD_NOTE", "ASSIGN"]
    assert added[0].content.data == {"assignees": [members[0]["id"]]}
    assert added[2].content.data == {"revoked": True}
    assert added[4].content.data == {"ignore_reason": "test_credential"}
    assert added[6].content.data == {"note_id": note.id}
    assert added[9].content.data == {"note_id": human_note["id"]}
    for entry in added[:9]:
        assert entry.api_token_id == ours and entry.content.type == "action"
    for entry in added[9:]:
        assert entry.api_token_id is None and entry.member.id == box.human.member["id"]
    moments = [e.created_at for e in log]
    assert moments == sorted(moments)
    assert added[0].created_at >= before[-1].created_at

    pages = list(client.activity_logs(incident_id, per_page=3).pages())
    assert len(pages) == -(-len(log) // 3) and all(len(p) <= 3 for p in pages)
    assert [e.id for page in pages for e in page] == [e.id for e in log]
