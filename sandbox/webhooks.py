"""The sandbox's custom webhook: every change it makes or is told to make, POSTed signed.

    with sandbox.running(webhook_url="http://127.0.0.1:8787/webhooks/gitguardian",
                         webhook_token="...") as box:
        box.events.new_incident(...)      # -> incident_triggered
    python -m sandbox serve --webhook-url URL --webhook-token TOKEN

Payloads have the shape of GitGuardian's documented examples (source, timestamp, action,
message, target_user, target_team, custom_webhook_name, incident {...}, and `occurrence` for
new_occurrence, `member` for access events). Each delivery is signed as GitGuardian signs:
header `Timestamp` (Unix seconds) and `Gitguardian-Signature: sha256=<hex>`, the HMAC-SHA256
of the body keyed by the timestamp's text followed by the token. A delivery answered with a
non-2xx status or not answered is tried again (3 more times, backing off), re-signed with a
fresh timestamp each time. GitGuardian documents its own delivery as best effort (one POST);
the retries here let tests show what a receiver does with a repeated delivery.
Deliveries go out in order, from one background thread, after the change is made.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

MESSAGES = {
    "incident_triggered": "A new incident has been detected.",
    "new_occurrence": "A new occurrence has been detected for this incident.",
    "incident_assigned": "This incident has been assigned to a user.",
    "incident_reassigned": "This incident has been reassigned to a different user.",
    "incident_unassigned": "A user was unassigned from this incident.",
    "incident_resolved": "This incident has been resolved.",
    "incident_ignored": "This incident has been ignored.",
    "incident_reopened": "This incident has been reopened.",
    "incident_regression": "A new regression was found for this incident.",
    "incident_severity_changed": "The severity has been updated for this incident.",
    "incident_validity_changed": "The validity has been updated for this incident.",
    "incident_access_granted": "A user has been granted access to this incident.",
    "incident_access_revoked": "Access to this incident has been revoked for a user.",
    "incident_shared_publicly": "A user has generated a public sharing link for this incident.",
    "incident_unshared_publicly": "A user has deactivated the public sharing link for this "
                                  "incident.",
    "incident_note_created": "A new note has been created for this incident.",
}
INCIDENT_KEYS = ("id", "date", "detector", "secret_hash", "hmsl_hash", "secret_revoked",
                 "validity", "status", "regression", "assignee_email", "severity", "ignored_at",
                 "ignore_reason", "resolved_at", "gitguardian_url", "share_url")


def sign(body: bytes, timestamp: str, token: str) -> str:
    return "sha256=" + hmac.new((timestamp + token).encode("utf-8"), body,
                                hashlib.sha256).hexdigest()


def payload(action: str, incident: dict, extra: dict, *, name: str = "sandbox") -> dict:
    """The webhook body for one change, in GitGuardian's documented shape."""
    shown = {k: incident.get(k) for k in INCIDENT_KEYS}
    shown["status"] = str(incident.get("status") or "").lower()
    shown["occurrence_count"] = incident.get("occurrences_count") or 0
    shown["feedbacks"] = list(incident.get("feedback_list") or [])
    body = {
        "source": "GitGuardian",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "action": action,
        "message": MESSAGES.get(action, action),
        "target_user": "GitGuardian",
        "target_team": "All-incidents",
        "custom_webhook_name": name,
        "incident": shown,
    }
    if "occurrence" in extra:
        body["occurrence"] = extra["occurrence"]
    if "member" in extra:
        body["member"] = extra["member"]
    return body


class WebhookSender:
    """Posts the store's announcements to one URL, signed, in order, retrying non-2xx."""

    def __init__(self, url: str, token: str, *, retries: int = 3, backoff: float = 0.2,
                 timeout: float = 5.0, name: str = "sandbox"):
        if not token:
            raise ValueError("a webhook needs a signature token")
        self.url, self._token, self.name = url, token, name
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.queue: queue.Queue[tuple[str, dict, dict] | None] = queue.Queue()
        self.delivered = 0
        self.attempts = 0
        self.failed: list[tuple[str, int, int | None]] = []  # action, incident id, last status
        self.sent: list[tuple[str, int, float]] = []  # action, incident id, when delivered
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:  # never the token
        return f"WebhookSender(url={self.url!r}, delivered={self.delivered})"

    def __call__(self, action: str, incident: dict, extra: dict) -> None:
        self.queue.put((action, incident, extra))

    def flush(self, timeout: float = 60.0) -> bool:
        """Wait until every announcement so far was delivered or given up on."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        self.queue.put(None)
        self._thread.join(timeout=self.timeout * (self.retries + 2))

    def _run(self) -> None:
        import requests

        session = requests.Session()
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                action, incident, extra = item
                self._deliver(session, action, incident, extra)
            except Exception as exc:  # noqa: BLE001 - one bad delivery never stops the rest
                logger.warning("webhook delivery crashed (%s)", type(exc).__name__)
            finally:
                self.queue.task_done()

    def _deliver(self, session: Any, action: str, incident: dict, extra: dict) -> None:
        body = json.dumps(payload(action, incident, extra, name=self.name)).encode()
        status = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            stamp = str(int(time.time()))
            headers = {"Content-Type": "application/json", "Timestamp": stamp,
                       "Gitguardian-Signature": sign(body, stamp, self._token),
                       "User-Agent": "sandbox-gitguardian-webhook"}
            self.attempts += 1
            try:
                answer = session.post(self.url, data=body, headers=headers, timeout=self.timeout)
                status = answer.status_code
            except Exception as exc:  # noqa: BLE001 - not answered: try again
                status = None
                logger.info("webhook %s for incident %s not delivered (%s)", action,
                            incident.get("id"), type(exc).__name__)
                continue
            if 200 <= status < 300:
                self.delivered += 1
                self.sent.append((action, int(incident["id"]), time.time()))
                return
            logger.info("webhook %s for incident %s answered %d", action, incident.get("id"),
                        status)
        self.failed.append((action, int(incident["id"]), status))
