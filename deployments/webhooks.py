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

Here: the app and the command. The checks on a request (settings, size, skew, signature,
replays, our own assignments) are in deployments/webhook_checks.py; the Prefect events and the
coalescing window in deployments/webhook_events.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request  # at module level: FastAPI resolves the handlers' annotations here

from deployments.webhook_checks import (
    ASSIGNMENTS,
    INCIDENT_FIELDS,
    MiB,
    OwnAssignments,
    Refused,
    Replays,
    Settings,
    assignee_of,
    incident_details,
    ledger_own_assignments,
    read_body,
    signature_of,
    verify,
)
from deployments.webhook_events import (
    ACTIONS,
    EVENT_PREFIX,
    Batch,
    Coalescer,
    Sink,
    build_event,
    event_name,
    prefect_sink,
    triggered_by,
)

# The receiver's public face: the checks live in deployments/webhook_checks.py, the Prefect
# events and the coalescing window in deployments/webhook_events.py.
__all__ = [
    "ACTIONS", "ASSIGNMENTS", "EVENT_PREFIX", "INCIDENT_FIELDS", "TOKEN_BLOCK", "TOKEN_ENV",
    "Batch", "Coalescer", "MiB", "OwnAssignments", "Refused", "Replays", "Settings", "Sink",
    "assignee_of", "build_event", "create_app", "event_name", "incident_details",
    "ledger_own_assignments", "load_token", "main", "prefect_sink", "signature_of",
    "triggered_by",
]

logger = logging.getLogger(__name__)

TOKEN_BLOCK = "gitguardian-webhook-token"
TOKEN_ENV = "GITGUARDIAN_WEBHOOK_TOKEN"


def load_token() -> str | None:
    """The signature token: the Prefect Secret block, else GITGUARDIAN_WEBHOOK_TOKEN."""
    from tasks.secrets import secret_value

    return secret_value(TOKEN_BLOCK, TOKEN_ENV)


# ----------------------------------------------------------------------------- the app


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
            body = await read_body(request, settings)
            delivery = verify(request, body, settings, token)
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
