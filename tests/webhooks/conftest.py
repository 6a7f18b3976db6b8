"""A webhook receiver served on a loopback port in this process, emitting to a real Prefect
server (the session's `prefect_server`), and helpers to sign, send and read back events."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import pytest
import requests

from tests.fixtures import canary


def sign(body: bytes, timestamp: str, token: str) -> str:
    """GitGuardian's scheme written out again (not the receiver's code): HMAC-SHA256 of the raw
    body keyed by the Timestamp header's text followed by the signature token."""
    return "sha256=" + hmac.new((timestamp + token).encode(), body, hashlib.sha256).hexdigest()


def gitguardian_event(action: str, incident_id: int, **incident: Any) -> dict[str, Any]:
    """A payload shaped like GitGuardian's documented examples."""
    return {
        "source": "GitGuardian",
        "timestamp": "2026-01-05T10:00:00.000000Z",
        "action": action,
        "message": "A new incident has been detected.",
        "target_user": "GitGuardian",
        "target_team": "All-incidents",
        "custom_webhook_name": "remediation",
        "incident": {
            "id": incident_id,
            "date": "2026-01-05T09:59:58Z",
            "detector": {"name": "generic_password", "display_name": "Generic Password",
                         "nature": "generic", "family": "Other",
                         "detector_group_name": "generic_password",
                         "detector_group_display_name": "Generic Password"},
            "secret_hash": "hash-" + str(incident_id),
            "hmsl_hash": "hmsl-" + str(incident_id),
            "secret_revoked": False,
            "validity": "invalid",
            "occurrence_count": 1,
            "status": "triggered",
            "regression": False,
            "assignee_email": None,
            "severity": "high",
            "ignored_at": None,
            "ignore_reason": None,
            "resolved_at": None,
            "gitguardian_url": f"https://dashboard.gitguardian.com/workspace/1/incidents/{incident_id}",
            "share_url": None,
            "feedbacks": [],
            **incident,
        },
    }


@dataclass
class Receiver:
    url: str  # the POST endpoint
    base: str
    token: str
    app: Any

    def post(self, body: bytes | dict, *, timestamp: float | str | None = None,
             token: str | None = None, signature: str | None = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        stamp = str(int(time.time())) if timestamp is None else str(timestamp)
        sent = {"Content-Type": "application/json", "Timestamp": stamp,
                "Gitguardian-Signature": signature or sign(raw, stamp, token or self.token),
                **(headers or {})}
        return requests.post(self.url, data=raw, headers=sent, timeout=10)


def serve_receiver(window: float = 0.3, **settings: Any) -> tuple[Receiver, Any]:
    from deployments.webhooks import Settings, create_app
    from sandbox import serve_in_thread

    app = create_app(canary.WEBHOOK_TOKEN, Settings(window=window, **settings))
    base, stop = serve_in_thread(app)
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(base + "/health", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.02)
    return Receiver(url=base + "/webhooks/gitguardian", base=base, token=canary.WEBHOOK_TOKEN,
                    app=app), stop


@pytest.fixture
def receiver(prefect_server) -> Iterator[Receiver]:
    found, stop = serve_receiver()
    try:
        yield found
    finally:
        stop()


def gitguardian_events(since: float) -> list[Any]:
    """Every gitguardian.* event the Prefect server holds that occurred after `since`."""
    from datetime import datetime

    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    moment = datetime.fromtimestamp(since, tz=UTC)
    query = EventFilter(event=EventNameFilter(prefix=["gitguardian."]),
                        occurred=EventOccurredFilter(since=moment))
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=query, limit=50)
        events = list(page.events)
        while page.next_page:
            page = client.read_events_page(str(page.next_page))
            events.extend(page.events)
    return events


def wait_for_events(since: float, predicate, timeout: float = 40.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        events = gitguardian_events(since)
        if predicate(events):
            return events
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for events; have {[e.event for e in events]}")
        time.sleep(0.5)
