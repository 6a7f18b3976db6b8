"""The webhook receiver's checks on a request (deployments/webhooks.py): its settings, the body's
size, the timestamp's skew, the HMAC signature, replays, the incident read from the body, and
whether an assignment is our own write coming back (the ledger's intents).

Nothing here logs the signature token or puts it in an error.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

logger = logging.getLogger("deployments.webhooks")  # the receiver logs under one name

MiB = 1024 * 1024
# Incident fields a playbook may use from an event; everything else (secret_hash, hmsl_hash,
# share_url, gitguardian_url, feedbacks, notes, e-mail addresses) stays out of Prefect.
INCIDENT_FIELDS = ("status", "validity", "severity", "regression")


def signature_of(body: bytes, timestamp: str, token: str) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the raw body, keyed by timestamp text + token (GitGuardian's
    documented scheme; its own test vector is checked in tests/webhooks)."""
    digest = hmac.new((timestamp + token).encode("utf-8"), body, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def _env_float(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    return float(text) if text else default


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8787
    path: str = "/webhooks/gitguardian"
    signature_header: str = "Gitguardian-Signature"
    timestamp_header: str = "Timestamp"
    max_skew: float = 300.0  # seconds either way
    max_body: int = MiB
    window: float = 5.0  # quiet seconds that close a burst into one Prefect event
    max_wait: float = 60.0  # ... but no event waits longer than this
    replay_memory: int = 100_000  # signed deliveries remembered (each for 2 x max_skew)
    own_within: float = 600.0  # seconds an intent in the ledger marks an assignment as ours

    @classmethod
    def from_env(cls) -> Settings:
        base = cls()
        return cls(
            host=os.environ.get("GG_WEBHOOK_HOST") or base.host,
            port=int(os.environ.get("GG_WEBHOOK_PORT") or base.port),
            path=os.environ.get("GG_WEBHOOK_PATH") or base.path,
            signature_header=os.environ.get("GG_WEBHOOK_SIGNATURE_HEADER") or base.signature_header,
            timestamp_header=os.environ.get("GG_WEBHOOK_TIMESTAMP_HEADER") or base.timestamp_header,
            max_skew=_env_float("GG_WEBHOOK_MAX_SKEW_SECONDS", base.max_skew),
            max_body=int(_env_float("GG_WEBHOOK_MAX_BODY_BYTES", base.max_body)),
            window=_env_float("GG_WEBHOOK_WINDOW_SECONDS", base.window),
            max_wait=_env_float("GG_WEBHOOK_MAX_WAIT_SECONDS", base.max_wait),
            own_within=_env_float("GG_WEBHOOK_OWN_ASSIGNMENTS_SECONDS", base.own_within),
        )


class Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class Replays:
    """Signed deliveries seen lately: (timestamp, signature) -> when to forget it."""

    def __init__(self, ttl: float, limit: int):
        self.ttl, self.limit = ttl, limit
        self.seen: OrderedDict[str, float] = OrderedDict()

    def check_and_add(self, key: str) -> bool:
        """True when `key` was seen within the window (a replay)."""
        now = time.monotonic()
        while self.seen:
            oldest, expires = next(iter(self.seen.items()))
            if expires > now and len(self.seen) < self.limit:
                break
            self.seen.popitem(last=False)
        if key in self.seen:
            return True
        self.seen[key] = now + self.ttl
        return False


def incident_details(action: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    incident = data.get("incident")
    if not isinstance(incident, dict):
        raise Refused(400, "the event has no incident object")
    raw_id = incident.get("id")
    if isinstance(raw_id, bool) or not isinstance(raw_id, int) or raw_id <= 0:
        raise Refused(400, "the event's incident has no valid id")
    details = {k: incident[k] for k in INCIDENT_FIELDS if k in incident}
    detector = incident.get("detector")
    if isinstance(detector, dict) and isinstance(detector.get("detector_group_name"), str):
        details["detector_group_name"] = detector["detector_group_name"]
    occurrence = data.get("occurrence")
    if action == "new_occurrence" and isinstance(occurrence, dict):
        if isinstance(occurrence.get("id"), int):
            details["occurrence_id"] = occurrence["id"]
    return raw_id, details


async def read_body(request: Request, settings: Settings) -> bytes:
    """The body, read no further than `settings.max_body` bytes (413 above)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > settings.max_body:
                raise Refused(413, f"body larger than {settings.max_body} bytes")
        except ValueError:
            raise Refused(400, "bad Content-Length") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > settings.max_body:
            raise Refused(413, f"body larger than {settings.max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def verify(request: Request, body: bytes, settings: Settings, token: str) -> str:
    """The delivery's key for replay detection (timestamp and signature), once its timestamp is
    within the skew and its signature matches (401 otherwise)."""
    signature = request.headers.get(settings.signature_header)
    stamp = request.headers.get(settings.timestamp_header)
    if not signature or stamp is None:
        raise Refused(
            401, f"missing {settings.signature_header} or {settings.timestamp_header} header"
        )
    try:
        sent = float(stamp.strip())
    except ValueError:
        raise Refused(401, f"{settings.timestamp_header} is not a Unix time") from None
    skew = time.time() - sent
    if skew != skew or abs(skew) > settings.max_skew:  # NaN, stale or from the future
        raise Refused(
            401,
            f"{settings.timestamp_header} is outside the allowed "
            f"{settings.max_skew:.0f} s skew",
        )
    expected = signature_of(body, stamp, token)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        raise Refused(401, "signature mismatch")
    return f"{stamp}:{expected}"


# ----------------------------------------------------------------------------- our own writes

ASSIGNMENTS = ("incident_assigned", "incident_reassigned")


class OwnAssignments:
    """`(incident id, assignee e-mail) -> True` when a real run of this project set out, within
    `within` seconds, to assign that incident to that person (the ledger's intents, written
    before each write). A ledger that cannot be read answers False: the event goes out."""

    def __init__(self, ledger_factory: Callable[[], Any], within: float):
        self.ledger_factory, self.within = ledger_factory, within
        self._ledger: Any = None

    def __call__(self, incident_id: int, email: str) -> bool:
        from datetime import UTC, datetime, timedelta

        from tasks.decide.identity import normalise_email

        try:
            if self._ledger is None:
                self._ledger = self.ledger_factory()
            since = datetime.now(UTC) - timedelta(seconds=self.within)
            ours = self._ledger.assignments_since(incident_id, since)
        except Exception as exc:  # noqa: BLE001 - fail open: departed runs as before
            # The type only: a database URL may hold a password.
            logger.warning("ledger unreadable (%s): incident %d's assignment is treated as "
                           "someone else's", type(exc).__name__, incident_id)
            return False
        return normalise_email(email) in {normalise_email(e) for e in ours}


def ledger_own_assignments(within: float) -> OwnAssignments | None:
    """From the playbooks' own ledger setting (LEDGER_URL, else the default file)."""
    if within <= 0:
        return None

    def ledger() -> Any:
        from tasks import settings

        return settings.ledger()

    return OwnAssignments(ledger, within)


def assignee_of(data: dict[str, Any]) -> str | None:
    incident = data.get("incident")
    email = incident.get("assignee_email") if isinstance(incident, dict) else None
    return email if isinstance(email, str) and email else None
