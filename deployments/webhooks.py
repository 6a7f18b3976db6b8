"""GitGuardian's signed custom webhooks in, Prefect events out: the event-driven path.

    python -m deployments.webhooks              # 127.0.0.1:8787, POST /webhooks/gitguardian
    python -m deployments.webhooks --host 0.0.0.0 --port 9000 --window 5

Each request is checked before anything is read from its body, in this order:
1. the body is at most 1 MiB (`413` otherwise, read no further);
2. the `Timestamp` header is a Unix time within `max_skew` seconds (300) of ours, in the past
   or the future (`401` otherwise);
3. the `Gitguardian-Signature` header is `sha256=` + HMAC-SHA256 of the raw body keyed by the
   Timestamp header's text followed by the signature token, compared in constant time (`401`);
4. the same signed delivery seen before (same timestamp and signature) is a replay: `200`, no
   event;
5. the body is a JSON object (`400` otherwise); an action this receiver does not know is
   logged as ignored and answered `202`; a known one without an incident id is a `400`.

A verified event becomes a Prefect event `gitguardian.incident.<action>` (`incident_triggered`
-> `gitguardian.incident.triggered`, `new_occurrence` -> `gitguardian.incident.new_occurrence`)
whose resource is `gitguardian.incident.<id>`. Bursts are coalesced: the first event of a name
opens a window that closes after 5 s without another (60 s at most), and ONE Prefect event
then carries every incident id seen in it (`payload.incident_ids`), so a historical scan that
opens 500 incidents starts one run per playbook, not 500. The payload keeps only what a
playbook needs (ids, status, validity, severity, detector, occurrence id); never a secret, a
hash, a share URL or the signature.

An `incident_assigned` / `incident_reassigned` whose assignee is the one a real run of this
project set out to assign that incident to in the last 10 minutes (an intent in the ledger,
recorded before the write, so before GitGuardian can announce it) is our own write coming
back: answered `200`, logged, no event (departed would only find the active member our own
directory check chose). Any other assignment, a person's to a leaver included, is an event.
The ledger unreadable: the event goes out as usual.

The signature token comes from the Prefect Secret block `gitguardian-webhook-token`, else the
environment variable GITGUARDIAN_WEBHOOK_TOKEN; it is never logged, put in an event or in an
error. Header names, skew, window and limits are settings (flags or GG_WEBHOOK_* variables).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations here

logger = logging.getLogger(__name__)

TOKEN_BLOCK = "gitguardian-webhook-token"
TOKEN_ENV = "GITGUARDIAN_WEBHOOK_TOKEN"
MiB = 1024 * 1024
EVENT_PREFIX = "gitguardian.incident."

# GitGuardian's documented custom-webhook actions -> the suffix of our Prefect event name.
ACTIONS: dict[str, str] = {
    "incident_triggered": "triggered",
    "new_occurrence": "new_occurrence",
    "incident_assigned": "assigned",
    "incident_reassigned": "reassigned",
    "incident_unassigned": "unassigned",
    "incident_resolved": "resolved",
    "incident_ignored": "ignored",
    "incident_reopened": "reopened",
    "incident_regression": "regression",
    "incident_severity_changed": "severity_changed",
    "incident_validity_changed": "validity_changed",
    "incident_access_granted": "access_granted",
    "incident_access_revoked": "access_revoked",
    "incident_shared_publicly": "shared_publicly",
    "incident_unshared_publicly": "unshared_publicly",
    "incident_feedback_received": "feedback_received",
    "incident_note_created": "note_created",
}
# Incident fields a playbook may use from an event; everything else (secret_hash, hmsl_hash,
# share_url, gitguardian_url, feedbacks, notes, e-mail addresses) stays out of Prefect.
INCIDENT_FIELDS = ("status", "validity", "severity", "regression")


def event_name(action: str) -> str:
    return EVENT_PREFIX + ACTIONS[action]


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


def load_token() -> str | None:
    """The signature token: the Prefect Secret block, else GITGUARDIAN_WEBHOOK_TOKEN."""
    from tasks.secrets import secret_value

    return secret_value(TOKEN_BLOCK, TOKEN_ENV)


# ----------------------------------------------------------------------------- triggers


def triggered_by() -> dict[str, list[str]]:
    """Prefect event name -> the deployments (flow/deployment) whose prefect.yaml trigger
    expects it, for the log line that says what an event starts."""
    from deployments import config

    found: dict[str, list[str]] = {}
    try:
        specs = config.load()
    except Exception:  # noqa: BLE001 - the receiver works without prefect.yaml; logs say less
        return found
    for spec in specs:
        for trigger in spec.triggers:
            for name in trigger.get("expect") or ():
                found.setdefault(name, []).append(f"{flow_name(spec)}/{spec.name}")
    return found


def flow_name(spec: Any) -> str:
    try:
        return spec.load_flow().name
    except Exception:  # noqa: BLE001 - the function's name says nearly as much
        return spec.function


# ----------------------------------------------------------------------------- coalescing


@dataclass
class Batch:
    name: str
    action: str
    opened: float
    last: float = 0.0  # monotonic time of the latest webhook
    started: float = 0.0  # monotonic time of the first
    incidents: dict[int, dict[str, Any]] = field(default_factory=dict)
    deliveries: int = 0


Sink = Callable[[Any], Awaitable[None]]


class Coalescer:
    """Gathers verified events per Prefect event name until `window` seconds pass without a new
    one (or `max_wait` since the first), then emits one event for them all. A burst (a scan's
    hundreds of new incidents, or the assignments our own triage run writes one after the
    other) thus starts one run per playbook; a lone event waits `window` seconds."""

    def __init__(
        self,
        sink: Sink,
        window: float,
        triggers: dict[str, list[str]] | None = None,
        max_wait: float = 60.0,
    ):
        self.sink, self.window, self.max_wait = sink, window, max(max_wait, window)
        self.triggers = triggers or {}
        self.pending: dict[str, Batch] = {}
        self.tasks: set[asyncio.Task] = set()
        self.emitted = 0
        self.failed = 0

    def add(self, action: str, incident_id: int, details: dict[str, Any]) -> None:
        name = event_name(action)
        batch = self.pending.get(name)
        if batch is None:
            now = time.monotonic()
            batch = self.pending[name] = Batch(name, action, time.time(), started=now)
            task = asyncio.get_running_loop().create_task(self._flush_later(name))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        batch.deliveries += 1
        batch.last = time.monotonic()
        batch.incidents.setdefault(incident_id, {}).update(details)

    async def _flush_later(self, name: str) -> None:
        while True:
            batch = self.pending.get(name)
            if batch is None:
                return
            due = min(batch.last + self.window, batch.started + self.max_wait)
            wait = due - time.monotonic()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        await self.flush(name)

    async def flush(self, name: str) -> None:
        batch = self.pending.pop(name, None)
        if batch is None or not batch.incidents:
            return
        event = build_event(batch)
        targets = self.triggers.get(name) or ["no deployment trigger"]
        ids = sorted(batch.incidents)
        shown = ", ".join(map(str, ids[:20])) + (
            f", ... ({len(ids)} in all)" if len(ids) > 20 else ""
        )
        for attempt in range(3):
            try:
                await self.sink(event)
                break
            except Exception as exc:  # noqa: BLE001 - say it, try again, then give up
                logger.warning(
                    "emitting %s failed (attempt %d: %s)", name, attempt + 1, type(exc).__name__
                )
                await asyncio.sleep(0.5 * (attempt + 1))
        else:
            self.failed += 1
            logger.error(
                "DROPPED %s for incidents %s: the Prefect API did not take it; the "
                "scheduled sweeps will pick them up",
                name,
                shown,
            )
            return
        self.emitted += 1
        logger.info(
            "emitted %s for %d incident(s) [%s] from %d webhook(s) -> %s",
            name,
            len(ids),
            shown,
            batch.deliveries,
            "; ".join(targets),
        )

    async def close(self) -> None:
        for name in list(self.pending):
            await self.flush(name)
        for task in list(self.tasks):
            task.cancel()


def build_event(batch: Batch) -> Any:
    from prefect.events import Event

    ids = sorted(batch.incidents)
    related = [
        {"prefect.resource.id": f"{EVENT_PREFIX}{i}", "prefect.resource.role": "incident"}
        for i in ids[1:100]
    ]  # Prefect keeps at most 100 related resources
    return Event(
        event=batch.name,
        resource={
            "prefect.resource.id": f"{EVENT_PREFIX}{ids[0]}",
            "prefect.resource.name": f"GitGuardian incident {ids[0]}",
            "gitguardian.incident_count": str(len(ids)),
        },
        related=related,
        payload={
            "action": batch.action,
            "incident_ids": ids,
            "incidents": {str(i): batch.incidents[i] for i in ids},
            "webhooks": batch.deliveries,
            "window_opened": batch.opened,
        },
    )


def prefect_sink(api_url: str | None = None) -> Sink:
    """Emit through Prefect's own events client (one websocket per flush)."""
    from prefect.events.clients import PrefectEventsClient
    from prefect.settings import PREFECT_API_URL

    url = api_url or PREFECT_API_URL.value()
    if not url:
        raise RuntimeError("No Prefect API: set PREFECT_API_URL (the receiver emits events there).")

    async def send(event: Any) -> None:
        async with PrefectEventsClient(api_url=url, reconnection_attempts=2) as client:
            await client.emit(event)

    return send


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


# ----------------------------------------------------------------------------- the app


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


def create_app(
    token: str,
    settings: Settings | None = None,
    *,
    sink: Sink | None = None,
    triggers: dict[str, list[str]] | None = None,
    own_assignments: Callable[[int, str], bool] | None = None,
) -> Any:
    """The receiver's ASGI app. `token` is the signature token (never logged).
    `own_assignments`: tells our own assignments (see `OwnAssignments`); None: every
    assignment is an event."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    if not token:
        raise ValueError("no webhook signature token")
    settings = settings or Settings()
    coalescer = Coalescer(
        sink or prefect_sink(),
        settings.window,
        triggered_by() if triggers is None else triggers,
        max_wait=settings.max_wait,
    )
    replays = Replays(ttl=2 * settings.max_skew, limit=settings.replay_memory)
    counts: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> Any:
        yield
        await coalescer.close()  # what is still gathering goes out before the process ends

    app = FastAPI(
        title="GitGuardian webhook receiver",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.coalescer = coalescer
    app.state.counts = counts

    def answer(status: int, what: str, **extra: Any) -> Any:
        counts[what] = counts.get(what, 0) + 1
        return JSONResponse({"status": what, **extra}, status_code=status)

    async def read_body(request: Request) -> bytes:
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

    def verify(request: Request, body: bytes) -> str:
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

    @app.get("/health")
    async def health() -> Any:
        return {
            "status": "ok",
            "pending_events": sorted(coalescer.pending),
            "emitted": coalescer.emitted,
            "emit_failures": coalescer.failed,
            "answers": dict(counts),
            "window_seconds": settings.window,
        }

    @app.post(settings.path)
    async def receive(request: Request) -> Any:
        try:
            body = await read_body(request)
            delivery = verify(request, body)
            if replays.check_and_add(delivery):
                logger.info("replayed delivery ignored (seen within the last %.0f s)", replays.ttl)
                return answer(200, "duplicate")
            try:
                data = json.loads(body)
            except (UnicodeDecodeError, ValueError):
                raise Refused(400, "the body is not JSON") from None
            if not isinstance(data, dict):
                raise Refused(400, "the body is not a JSON object")
            action = data.get("action")
            if not isinstance(action, str) or action not in ACTIONS:
                shown = (
                    action
                    if isinstance(action, str) and len(action) <= 64 and action.isprintable()
                    else type(action).__name__
                )
                logger.info("ignored GitGuardian event with unknown action %r", shown)
                return answer(202, "ignored", reason="unknown action")
            incident_id, details = incident_details(action, data)
        except Refused as refusal:
            logger.info("refused webhook: %d %s", refusal.status, refusal.detail)
            return answer(refusal.status, "refused", detail=refusal.detail)
        assignee = assignee_of(data) if action in ASSIGNMENTS else None
        if (assignee and own_assignments is not None
                and await asyncio.to_thread(own_assignments, incident_id, assignee)):
            logger.info(
                "received %s for incident %d: the assignment a playbook of this project wrote "
                "(its intent is in the ledger) -> no event, nothing started",
                action,
                incident_id,
            )
            return answer(200, "own assignment", incident_id=incident_id)
        name = event_name(action)
        coalescer.add(action, incident_id, details)
        targets = coalescer.triggers.get(name) or ["no deployment trigger"]
        logger.info(
            "received %s for incident %d -> %s within %.1f s -> %s",
            action,
            incident_id,
            name,
            settings.window,
            "; ".join(targets),
        )
        return answer(200, "accepted", event=name, incident_id=incident_id, triggers=targets)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    base = Settings.from_env()
    parser = argparse.ArgumentParser(
        prog="python -m deployments.webhooks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--host",
        default=base.host,
        help=f"bind address (default {base.host}; "
        "put a TLS reverse proxy in front for GitGuardian to reach it)",
    )
    parser.add_argument("--port", type=int, default=base.port)
    parser.add_argument("--path", default=base.path, help="the POST path GitGuardian calls")
    parser.add_argument("--signature-header", default=base.signature_header)
    parser.add_argument("--timestamp-header", default=base.timestamp_header)
    parser.add_argument(
        "--max-skew",
        type=float,
        default=base.max_skew,
        help="seconds the Timestamp header may differ from this clock",
    )
    parser.add_argument("--max-body", type=int, default=base.max_body, help="bytes (413 above)")
    parser.add_argument(
        "--window",
        type=float,
        default=base.window,
        help="quiet seconds that close a burst of events into one Prefect event",
    )
    parser.add_argument(
        "--max-wait",
        type=float,
        default=base.max_wait,
        help="the longest an event waits for its burst to end (seconds)",
    )
    parser.add_argument(
        "--own-assignments-seconds",
        type=float,
        default=base.own_within,
        help="an assignment a playbook set out to write this recently (the ledger's intents) "
        "starts nothing; 0: every assignment is an event",
    )
    args = parser.parse_args(argv)
    settings = Settings(
        host=args.host,
        port=args.port,
        path=args.path,
        signature_header=args.signature_header,
        timestamp_header=args.timestamp_header,
        max_skew=args.max_skew,
        max_body=args.max_body,
        window=args.window,
        max_wait=args.max_wait,
        own_within=args.own_assignments_seconds,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logger.setLevel(logging.INFO)
    token = load_token()
    if not token:
        print(
            f"No webhook signature token: create the Prefect Secret block '{TOKEN_BLOCK}' "
            f"or set {TOKEN_ENV}.",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    app = create_app(token, settings, own_assignments=ledger_own_assignments(settings.own_within))
    logger.info(
        "listening on http://%s:%d%s (window %.1f s, at most %.0f s; skew %.0f s; "
        "body <= %d bytes)",
        settings.host,
        settings.port,
        settings.path,
        settings.window,
        settings.max_wait,
        settings.max_skew,
        settings.max_body,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
