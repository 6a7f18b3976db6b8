"""Human edits in the dashboard (`box.human`) and the hooks that place them between a client's
read and its write (`box.before`, `box.after`). Each test gets its own server."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

import sandbox
from sandbox.store import ApiError
from tests.sandbox.workspace_builder import build_workspace

# Builder facts: status by id % 4 -> 0 TRIGGERED, 1 ASSIGNED (to member 2), 2 RESOLVED, 3 IGNORED;
# members 1 owner (behind the sandbox's tokens), 2 manager, 3 member, 4 restricted, 5 inactive.
TRIGGERED, ASSIGNED, RESOLVED, IGNORED = 4, 5, 6, 7
HUMAN = 2


@pytest.fixture
def box() -> Iterator[sandbox.Sandbox]:
    with sandbox.running(workspace=build_workspace(12)) as running_box:
        yield running_box


def call(box, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Token {box.token}"}
    return requests.request(method, box.url + path, headers=headers, timeout=10, **kwargs)


def our_token_id(box) -> str:
    return box.store.tokens[box.token].id


def entries_for(box, incident_id: int) -> list[dict]:
    return [a for a in box.state()["audit_logs"] if a["target_ids"] == [str(incident_id)]]


# ---------------------------------------------------------------- box.human


def test_the_human_is_a_manager_who_is_not_behind_our_tokens(box):
    assert {t.member_id for t in box.store.tokens.values()} == {1}
    member = box.human.member
    assert (member["id"], member["access_level"], member["active"]) == (HUMAN, "manager", True)
    assert member["email"] == "max.manager@corp.example"


def test_human_edits_record_the_member_and_no_token(box):
    resolved = box.human.resolve(TRIGGERED, secret_revoked=True)
    assert (resolved["status"], resolved["resolver_id"], resolved["resolver_api_token_id"]) == (
        "RESOLVED", HUMAN, None)
    assert resolved["secret_revoked"] is True
    assert box.human.reopen(TRIGGERED)["status"] == "TRIGGERED"
    ignored = box.human.ignore(TRIGGERED, "false_positive")
    assert (ignored["ignorer_id"], ignored["ignorer_api_token_id"], ignored["ignore_reason"]) == (
        HUMAN, None, "false_positive")
    box.human.reopen(TRIGGERED)
    assert box.human.assign(TRIGGERED, "mia.member@corp.example")["assignee_id"] == 3
    assert box.human.unassign(TRIGGERED)["status"] == "TRIGGERED"
    note = box.human.add_note(TRIGGERED, "Checked by hand.")
    assert (note["member_id"], note["api_token_id"], note["api_token"]) == (HUMAN, None, None)
    assert note["user_id"] != note["member_id"]  # a user account id, as in the recordings

    entries = entries_for(box, TRIGGERED)
    assert [e["event_name"] for e in entries] == [
        "secret_incident.resolved", "secret_incident.reopened", "secret_incident.ignored",
        "secret_incident.reopened",
        "secret_incident.assigned", "secret_incident.unassigned"]
    assert {(e["api_token_id"], e["member_id"], e["member_email"]) for e in entries} == {
        (None, HUMAN, "max.manager@corp.example")}
    note_entry = box.state()["audit_logs"][-1]
    assert (note_entry["event_name"], note_entry["api_token_id"], note_entry["member_id"]) == (
        "secret_incident_note.created", None, HUMAN)
    # what the API shows of it
    shown = call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}/notes").json()
    assert [(n["comment"], n["api_token_id"]) for n in shown] == [("Checked by hand.", None)]


def test_human_edits_meet_the_same_state_machine(box):
    for edit in (lambda: box.human.resolve(RESOLVED), lambda: box.human.unassign(TRIGGERED),
                 lambda: box.human.reopen(TRIGGERED), lambda: box.human.ignore(IGNORED, "invalid")):
        with pytest.raises(ApiError) as conflict:
            edit()
        assert conflict.value.status == 409
    with pytest.raises(ApiError) as unknown:
        box.human.assign(TRIGGERED, "nobody@corp.example")
    assert unknown.value.status == 404
    with pytest.raises(ApiError) as bad:
        box.human.ignore(TRIGGERED, "bored")
    assert bad.value.status == 400
    assert entries_for(box, TRIGGERED) == entries_for(box, RESOLVED) == []


# ---------------------------------------------------------------- hooks


def test_after_a_read_a_human_resolves_and_our_assign_meets_a_409(box):
    hook = box.after("GET", rf"/v1/incidents/secrets/{TRIGGERED}", lambda b: b.human.resolve(
        TRIGGERED))
    read = call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}")
    assert read.status_code == 200 and read.json()["status"] == "TRIGGERED"  # the old state
    # done before the answer was sent: the human's edit is in place when the read returns
    assert box.state()["incidents"][TRIGGERED]["status"] == "RESOLVED"
    assert hook.fired == 1 and hook.errors == []
    assign = call(box, "POST", f"/v1/incidents/secrets/{TRIGGERED}/assign", json={"member_id": 3})
    assert assign.status_code == 409
    entries = entries_for(box, TRIGGERED)
    assert [(e["event_name"], e["api_token_id"], e["member_id"]) for e in entries] == [
        ("secret_incident.resolved", None, HUMAN)]  # the human's, and nothing of ours
    assert box.state()["incidents"][TRIGGERED]["resolver_id"] == HUMAN


def test_before_our_assign_a_human_reassigns_and_ours_lands_after_it(box):
    hook = box.before("POST", rf"/v1/incidents/secrets/{ASSIGNED}/assign",
                      lambda b: b.human.assign(ASSIGNED, "rex.restricted@corp.example"))
    answer = call(box, "POST", f"/v1/incidents/secrets/{ASSIGNED}/assign", json={"member_id": 3})
    assert answer.status_code == 200 and answer.json()["assignee_id"] == 3
    assert hook.fired == 1
    entries = entries_for(box, ASSIGNED)
    assert [(e["api_token_id"], e["member_id"], e["data"]) for e in entries] == [
        (None, HUMAN, {"assignee_id": 4}),  # the human first
        (our_token_id(box), 1, {"assignee_id": 3}),  # then us
    ]
    assert entries[0]["id"] < entries[1]["id"]


def test_a_hook_fires_times_times_only_then_is_spent(box):
    seen: list[str] = []
    path = rf"/v1/incidents/secrets/{TRIGGERED}"
    twice = box.after("GET", path, lambda b: seen.append("twice"), times=2)
    for _ in range(4):
        assert call(box, "GET", path).status_code == 200
    assert twice.fired == 2 and seen == ["twice", "twice"]
    forever = box.before("GET", path, lambda b: seen.append("forever"), times=None)
    for _ in range(3):
        call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}")
    assert forever.fired == 3
    forever.cancel()
    call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}")
    assert forever.fired == 3 and seen.count("forever") == 3


def test_hooks_match_method_and_the_whole_path_of_authenticated_requests(box):
    hook = box.before("GET", rf"/v1/incidents/secrets/{TRIGGERED}", lambda b: None, times=None)
    call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}/notes")  # longer path
    call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}4")  # another incident
    call(box, "POST", f"/v1/incidents/secrets/{TRIGGERED}")  # another method (405)
    refused = requests.get(f"{box.url}/v1/incidents/secrets/{TRIGGERED}", timeout=10,
                           headers={"Authorization": "Token not-a-key"})
    assert refused.status_code == 401
    assert hook.fired == 0
    any_incident = box.after("get", r"/v1/incidents/secrets/\d+", lambda b: None, times=None)
    call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}")
    call(box, "GET", "/v1/incidents/secrets/9999")  # a 404 is handled too
    assert (hook.fired, any_incident.fired) == (1, 2)
    box.clear_hooks()
    call(box, "GET", f"/v1/incidents/secrets/{TRIGGERED}")
    assert (hook.fired, any_incident.fired) == (1, 2)


def test_hooks_run_in_the_server_and_keep_their_errors(box):
    threads: list[threading.Thread] = []
    box.before("GET", "/v1/health", lambda b: threads.append(threading.current_thread()))
    failing = box.after("GET", "/v1/health", lambda b: b.human.reopen(TRIGGERED))
    assert call(box, "GET", "/v1/health").status_code == 200  # the request goes on
    assert threads and threads[0] is not threading.current_thread()
    assert failing.fired == 1
    assert [getattr(e, "status", None) for e in failing.errors] == [409]


def test_a_hook_may_call_the_sandbox_over_http(box):
    """Actions run off the event loop: one that makes a request itself does not hang."""
    answers: list[int] = []
    box.before("GET", "/v1/health",
               lambda b: answers.append(call(b, "GET", "/v1/members").status_code))
    assert call(box, "GET", "/v1/health").status_code == 200
    assert answers == [200]


def test_times_holds_under_concurrent_requests(box):
    hook = box.before("GET", "/v1/health", lambda b: None, times=3)
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: call(box, "GET", "/v1/health").status_code, range(16)))
    assert codes == [200] * 16
    assert hook.fired == 3


def test_an_api_error_raised_by_a_before_hook_does_not_reach_the_client(box):
    def conflict(_box):
        raise ApiError(409, "Incident already shared.")

    hook = box.before("POST", rf"/v1/incidents/secrets/{TRIGGERED}/share", conflict)
    answer = call(box, "POST", f"/v1/incidents/secrets/{TRIGGERED}/share", json={})
    assert answer.status_code == 200 and "share_url" in answer.json()  # the request went on
    assert [e.status for e in hook.errors] == [409]


def test_respond_answers_a_canned_response_instead_of_the_api(box):
    path = f"/v1/incidents/secrets/{TRIGGERED}/share"
    before = box.state()["shares"]
    hook = box.respond("POST", path, 409, '{"detail": "Incident already shared."}')
    answer = call(box, "POST", path, json={})
    assert (answer.status_code, answer.json()) == (409, {"detail": "Incident already shared."})
    assert hook.fired == 1 and box.state()["shares"] == before  # not handled
    box.respond("POST", path, 200, lambda b: f"<p>{len(b.store.incidents)}</p>",
                content_type="text/html")
    answer = call(box, "POST", path, json={})
    assert answer.status_code == 200 and answer.text == "<p>12</p>"
    assert answer.headers["content-type"].startswith("text/html")
    # Spent: the next request is the API's own.
    assert call(box, "POST", path, json={}).json()["share_url"]
