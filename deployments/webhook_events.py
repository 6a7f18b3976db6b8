"""The webhook receiver's Prefect side (deployments/webhooks.py): event names, bursts coalesced
into one Prefect event per window, the event built and emitted, and which deployments' triggers
expect it (for the log line).

A verified GitGuardian action becomes `gitguardian.incident.<suffix>` (`ACTIONS`); `Coalescer`
gathers them per name until `window` quiet seconds (or `max_wait`) pass, then emits ONE event
carrying every incident id seen (`payload.incident_ids`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("deployments.webhooks")  # the receiver logs under one name

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


def event_name(action: str) -> str:
    return EVENT_PREFIX + ACTIONS[action]


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
