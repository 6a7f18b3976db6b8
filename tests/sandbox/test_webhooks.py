"""The sandbox's custom webhook: a signed event per change (events and writes by any token or
person), in GitGuardian's documented shape, retried on a non-2xx answer."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import sandbox
from tests.fixtures import canary


class Recorder:
    """A receiving endpoint that checks signatures and answers `fail_first` 503s first."""

    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.calls: list[dict] = []
        self.bad_signatures = 0
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request):
            body = await request.body()
            stamp = request.headers["Timestamp"]
            key = (stamp + canary.WEBHOOK_TOKEN).encode()
            expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, request.headers["Gitguardian-Signature"]):
                self.bad_signatures += 1
                return JSONResponse({}, status_code=401)
            assert abs(int(stamp) - time.time()) < 60
            if self.fail_first:
                self.fail_first -= 1
                return JSONResponse({}, status_code=503)
            self.calls.append(json.loads(body))
            return {"ok": True}

        self.url, self.stop = sandbox.serve_in_thread(app)
        self.url += "/hook"


@pytest.fixture
def recorder():
    found = Recorder()
    try:
        yield found
    finally:
        found.stop()


def test_every_change_is_announced_signed_and_shaped_as_documented(recorder) -> None:
    with sandbox.running(seed=3, incidents=30, webhook_url=recorder.url,
                         webhook_token=canary.WEBHOOK_TOKEN) as box:
        created = box.events.new_incident(filepath="tests/fixtures/key.py", validity="invalid")
        incident_id = created["id"]
        box.events.new_occurrence(incident_id, filepath="src/a.py")
        box.events.set_validity(incident_id, "valid")
        box.events.set_validity(incident_id, "valid")  # no change: no event
        member = next(m for m in box.store.members.values() if m.get("active", True))
        headers = {"Authorization": f"Token {box.token}"}
        base = f"{box.url}/v1/incidents/secrets/{incident_id}"
        assert requests.post(base + "/assign", json={"email": member["email"]}, headers=headers,
                             timeout=10).status_code == 200
        box.human.ignore(incident_id, "low_risk")  # a person's write is announced too
        assert requests.post(base + "/reopen", headers=headers, timeout=10).status_code == 200
        assert box.webhooks.flush(30)
        assert repr(box.webhooks).count(canary.WEBHOOK_TOKEN) == 0
    actions = [(c["action"], c["incident"]["id"]) for c in recorder.calls]
    assert actions == [(a, incident_id) for a in (
        "incident_triggered", "new_occurrence", "incident_validity_changed",
        "incident_assigned", "incident_ignored", "incident_reopened")]
    first = recorder.calls[0]
    assert {"source", "timestamp", "action", "message", "target_user", "target_team",
            "custom_webhook_name", "incident"} <= set(first)
    assert first["incident"]["status"] == "triggered"
    assert first["incident"]["validity"] == "invalid"
    assert first["incident"]["detector"]["detector_group_name"]
    occurrence = recorder.calls[1]["occurrence"]
    assert (occurrence["incident_id"], occurrence["filepath"]) == (incident_id, "src/a.py")
    assert recorder.calls[2]["incident"]["validity"] == "valid"
    assert recorder.calls[3]["incident"]["assignee_email"] == member["email"]
    assert recorder.bad_signatures == 0


def test_a_non_2xx_answer_is_retried_with_a_fresh_signature() -> None:
    recorder = Recorder(fail_first=2)
    try:
        with sandbox.running(seed=3, incidents=10, webhook_url=recorder.url,
                             webhook_token=canary.WEBHOOK_TOKEN) as box:
            box.webhooks.backoff = 0.05
            box.events.new_incident()
            assert box.webhooks.flush(30)
            assert (box.webhooks.delivered, box.webhooks.attempts) == (1, 3)
            assert box.webhooks.failed == []
    finally:
        recorder.stop()
    assert [c["action"] for c in recorder.calls] == ["incident_triggered"]


def test_an_endpoint_that_never_accepts_is_given_up_on() -> None:
    recorder = Recorder(fail_first=100)
    try:
        with sandbox.running(seed=3, incidents=10, webhook_url=recorder.url,
                             webhook_token=canary.WEBHOOK_TOKEN) as box:
            box.webhooks.backoff = 0.01
            created = box.events.new_incident()
            assert box.webhooks.flush(30)
            assert box.webhooks.failed == [("incident_triggered", created["id"], 503)]
            assert box.webhooks.attempts == 4  # the first try and 3 retries
    finally:
        recorder.stop()
