"""The webhook receiver: GitGuardian's signature scheme, every refusal as specified with nothing
emitted (checked on a real Prefect server), coalescing, health, and the token kept out of logs."""
from __future__ import annotations

import json
import logging
import secrets
import time

import pytest
import requests

from deployments.webhooks import ACTIONS, MiB, Replays, signature_of
from tests.fixtures import canary

from .conftest import (
    Receiver,
    gitguardian_event,
    gitguardian_events,
    serve_receiver,
    sign,
    wait_for_events,
)

pytestmark = [pytest.mark.prefect]


def _id() -> int:
    """An incident id no other test uses, so this test's events are told from the others'."""
    return 10_000_000 + secrets.randbelow(80_000_000)


def test_signature_matches_gitguardians_documented_example() -> None:
    # GitGuardian's custom-webhook page: timestamp "0", token "foo", payload "bar".
    expected = "sha256=172fe3d694b734aa53dc892fd3b8d62163fc240064de570ba006900bb54a0fc2"
    assert signature_of(b"bar", "0", "foo") == expected
    assert sign(b"bar", "0", "foo") == expected


def test_replays_are_remembered_for_their_window_only() -> None:
    replays = Replays(ttl=0.2, limit=10)
    assert replays.check_and_add("a") is False
    assert replays.check_and_add("a") is True
    time.sleep(0.25)
    assert replays.check_and_add("a") is False  # forgotten: the skew check refuses it anyway


def test_every_refusal_is_answered_as_specified_and_emits_nothing(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="deployments")
    since = time.time() - 1
    wrong = {_id(): None for _ in range(8)}
    ids = iter(wrong)
    now = int(time.time())

    def event(**extra):
        return gitguardian_event("incident_triggered", next(ids), **extra)

    body = json.dumps(event()).encode()
    # wrong signature: a valid-looking digest of something else
    answer = receiver.post(body, signature=sign(b"other", str(now), receiver.token))
    assert (answer.status_code, answer.json()["detail"]) == (401, "signature mismatch")
    # wrong token
    answer = receiver.post(event(), token="not-the-token")
    assert (answer.status_code, answer.json()["detail"]) == (401, "signature mismatch")
    # not even the sha256= form
    answer = receiver.post(event(), signature="deadbeef")
    assert answer.status_code == 401
    # stale and future timestamps, correctly signed
    for stamp in (now - 301, now + 301):
        answer = receiver.post(event(), timestamp=stamp)
        assert answer.status_code == 401 and "skew" in answer.json()["detail"]
    # a Timestamp that is no number, and a missing signature header
    assert receiver.post(event(), timestamp="yesterday").status_code == 401
    raw = json.dumps(gitguardian_event("incident_triggered", _id())).encode()
    missing = requests.post(receiver.url, data=raw, timeout=10,
                            headers={"Timestamp": str(now), "Content-Type": "application/json"})
    assert missing.status_code == 401
    # 2 MiB body, signed: refused before being read whole
    big = b'{"action": "incident_triggered", "pad": "' + b"x" * (2 * MiB) + b'"}'
    answer = receiver.post(big)
    assert answer.status_code == 413
    # ... also when no Content-Length is sent (chunked)
    stamp = str(int(time.time()))

    def chunks():
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    chunked = requests.post(receiver.url, data=chunks(), timeout=10, headers={
        "Timestamp": stamp, "Gitguardian-Signature": sign(big, stamp, receiver.token)})
    assert chunked.status_code == 413
    # non-JSON, and JSON that is not an object, signed
    assert receiver.post(b"incident_triggered 42, not json").status_code == 400
    assert receiver.post(b"[1, 2, 3]").status_code == 400
    # a known action without an incident id
    assert receiver.post({"action": "incident_triggered", "incident": {}}).status_code == 400
    # an unknown action: accepted, logged as ignored, nothing emitted
    unknown = gitguardian_event("incident_teleported", _id())
    answer = receiver.post(unknown)
    assert (answer.status_code, answer.json()["status"]) == (202, "ignored")
    assert "ignored GitGuardian event with unknown action 'incident_teleported'" in caplog.text

    # A replay: the first delivery is accepted (the control event), the same bytes and
    # headers again are a 200 no-op.
    control = _id()
    body = json.dumps(gitguardian_event("incident_triggered", control)).encode()
    stamp = str(int(time.time()))
    headers = {"Timestamp": stamp, "Gitguardian-Signature": sign(body, stamp, receiver.token)}
    first = requests.post(receiver.url, data=body, headers=headers, timeout=10)
    again = requests.post(receiver.url, data=body, headers=headers, timeout=10)
    assert (first.status_code, first.json()["status"]) == (200, "accepted")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")

    events = wait_for_events(since, lambda found: any(
        control in e.payload.get("incident_ids", []) for e in found))
    time.sleep(1.0)  # anything else the receiver would have sent is on the server by now
    events = gitguardian_events(since)
    emitted = [i for e in events for i in e.payload.get("incident_ids", [])]
    assert emitted == [control], emitted  # one event, the control's, once
    assert events[0].payload["webhooks"] == 1  # the replay added nothing
    # The token shows nowhere: not in the answers' logs nor in the event.
    for text in (caplog.text, json.dumps([e.model_dump(mode="json") for e in events])):
        assert canary.secrets_in(text) == []
    assert "refused webhook: 401 signature mismatch" in caplog.text


def test_a_burst_is_one_event_carrying_every_id_and_no_secret_or_share_url(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="deployments")
    since = time.time() - 1
    burst = sorted({_id() for _ in range(40)})
    share = "https://dashboard.gitguardian.com/share/incidents/" + secrets.token_urlsafe(24)
    for incident_id in burst:
        answer = receiver.post(gitguardian_event("incident_triggered", incident_id,
                                                 share_url=share))
        assert answer.status_code == 200, answer.text
    occurrence = {**gitguardian_event("new_occurrence", burst[0]),
                  "occurrence": {"id": 991, "incident_id": burst[0], "filepath": "tests/x.py",
                                 "author_info": "dev@corp.example"}}
    assert receiver.post(occurrence).status_code == 200

    events = wait_for_events(since, lambda found: len(found) >= 2)
    time.sleep(1.0)
    events = gitguardian_events(since)
    by_name = {e.event: e for e in events}
    assert sorted(by_name) == [
        "gitguardian.incident.new_occurrence",
        "gitguardian.incident.triggered",
    ]
    triggered = by_name["gitguardian.incident.triggered"]
    assert triggered.payload["incident_ids"] == burst
    assert triggered.payload["webhooks"] == len(burst)
    assert triggered.resource.id == f"gitguardian.incident.{burst[0]}"
    assert {r.id for r in triggered.related} == {f"gitguardian.incident.{i}" for i in burst[1:]}
    details = triggered.payload["incidents"][str(burst[0])]
    assert details == {
        "status": "triggered",
        "validity": "invalid",
        "severity": "high",
        "regression": False,
        "detector_group_name": "generic_password",
    }
    assert (
        by_name["gitguardian.incident.new_occurrence"].payload["incidents"][str(burst[0])][
            "occurrence_id"
        ]
        == 991
    )
    text = json.dumps([e.model_dump(mode="json") for e in events])
    assert "share/incidents" not in text and "hash-" not in text and "hmsl" not in text
    assert "dev@corp.example" not in text
    assert canary.secrets_in(text) == [] and canary.secrets_in(caplog.text) == []
    # A log line per webhook and per emitted event, naming what it triggers.
    assert f"received incident_triggered for incident {burst[0]}" in caplog.text
    assert f"emitted gitguardian.incident.triggered for {len(burst)} incident(s)" in caplog.text
    assert "new-incidents/on-events" in caplog.text


def test_health_and_custom_header_names(prefect_server) -> None:
    receiver, stop = serve_receiver(
        signature_header="X-Sig", timestamp_header="X-Time", max_skew=10
    )
    try:
        health = requests.get(receiver.base + "/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        body = json.dumps(gitguardian_event("incident_resolved", _id())).encode()
        stamp = str(int(time.time()))
        good = {"X-Time": stamp, "X-Sig": sign(body, stamp, receiver.token)}
        assert requests.post(receiver.url, data=body, headers=good, timeout=5).status_code == 200
        # The default names mean nothing to this receiver.
        default = {"Timestamp": stamp, "Gitguardian-Signature": sign(body, stamp, receiver.token)}
        assert requests.post(receiver.url, data=body, headers=default, timeout=5).status_code == 401
        old = str(int(time.time()) - 11)
        stale = {"X-Time": old, "X-Sig": sign(body, old, receiver.token)}
        assert requests.post(receiver.url, data=body, headers=stale, timeout=5).status_code == 401
        answers = requests.get(receiver.base + "/health", timeout=5).json()["answers"]
        assert answers == {"accepted": 1, "refused": 2}
    finally:
        stop()


def test_every_documented_action_has_an_event_name() -> None:
    assert ACTIONS["incident_triggered"] == "triggered"
    assert ACTIONS["new_occurrence"] == "new_occurrence"
    assert ACTIONS["incident_validity_changed"] == "validity_changed"
    assert len(set(ACTIONS.values())) == len(ACTIONS)


def test_the_command_refuses_to_start_without_a_token(monkeypatch, capsys) -> None:
    from deployments import webhooks

    monkeypatch.delenv("GITGUARDIAN_WEBHOOK_TOKEN", raising=False)
    monkeypatch.setattr(webhooks, "load_token", lambda: None)
    assert webhooks.main(["--port", "0"]) == 2
    assert "gitguardian-webhook-token" in capsys.readouterr().err


def test_a_steady_stream_is_one_event_until_max_wait() -> None:
    """The window closes after `window` quiet seconds, so a stream of events (our own triage
    run assigning 500 incidents one after the other) is one event; `max_wait` caps the wait."""
    import asyncio

    from deployments.webhooks import Coalescer

    async def stream(max_wait: float) -> list:
        sent: list = []

        async def sink(event) -> None:
            sent.append(event)

        coalescer = Coalescer(sink, window=0.3, triggers={}, max_wait=max_wait)
        for incident_id in range(1, 13):  # one every 0.1 s for 1.2 s
            coalescer.add("incident_assigned", incident_id, {})
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.6)
        return [e.payload["incident_ids"] for e in sent]

    assert asyncio.run(stream(max_wait=60)) == [list(range(1, 13))]
    batches = asyncio.run(stream(max_wait=0.5))
    assert len(batches) >= 2 and sum(batches, []) == list(range(1, 13))
