"""The store's state: the workspace indexed for the API, ids, the clock, the audit log and
each incident's activity log. Every part of the store (auth, reads, writes, events) builds on
`State`; the workspace's objects are shared, and cloned the first time they change.
"""
from __future__ import annotations

import gc
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sandbox.api import (
    NOT_FOUND,
    Actor,
    ApiError,
    Human,
    clone,
    iso,
    offset_time,
    parse_time,
    token_id_of,
)
from sandbox.workspace import Token, Workspace


class State:
    """A workspace's state behind the API. Thread-safe; times come from `clock`."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        clock: Callable[[], datetime] | None = None,
        strict_reassign: bool = False,
    ):
        # strict_reassign: assigning an ASSIGNED incident to its current assignee answers 409
        # (the sandbox's old behaviour) instead of the real API's 200.
        self.strict_reassign = strict_reassign
        # notify(action, incident, extra): called for every change the platform would announce
        # through a custom webhook (sandbox/webhooks.py sends them); None: nobody listens.
        self.notify: Callable[[str, dict, dict], None] | None = None
        # Indexing allocates many small containers; with a big workspace alive, each
        # automatic collection walks all of it (measured: 9 s instead of 1 s at 100k).
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._load(workspace, clock)
        finally:
            if collecting:
                gc.enable()

    def _load(self, workspace: Workspace, clock: Callable[[], datetime] | None) -> None:
        self.workspace = workspace
        self.workspace_id = workspace.workspace_id
        self.lock = threading.RLock()
        started = time.monotonic()
        # The sandbox's time runs from the workspace's reference time, so that writes are
        # dated consistently with generated data even when `now` was fixed in the past.
        self.clock = clock or (
            lambda: workspace.now + timedelta(seconds=time.monotonic() - started)
        )
        # The workspace's objects are shared, not copied (copying 100k incidents takes
        # seconds): an object is cloned the first time it changes, so the Workspace keeps
        # its generated values. Occurrences never change once made.
        self._owned: set[tuple[str, int]] = set()
        self.members: dict[int, dict] = {m["id"]: m for m in workspace.members}
        self.sources: dict[int, dict] = {s["id"]: clone(s) for s in workspace.sources}
        self.incidents: dict[int, dict] = {}
        for incident in sorted(workspace.incidents, key=lambda i: i["id"]):
            self.incidents[incident["id"]] = incident
        self._incident_ids: list[int] = list(self.incidents)  # ascending, for scan_page
        self.occurrences: dict[int, dict] = {}
        self._occurrence_ids: list[int] = []
        self.occurrences_by_incident: dict[int, list[dict]] = {}
        self.sources_by_incident: dict[int, set[int]] = {}
        for occurrence in sorted(workspace.occurrences, key=lambda o: o["id"]):
            self._index_occurrence(occurrence)
        self.notes: dict[int, list[dict]] = {}
        for note in workspace.notes:
            self.notes.setdefault(note["incident_id"], []).append(clone(note))
        self.note_ids: dict[int, int] = {}  # note id -> incident id
        for incident_id, notes in self.notes.items():
            for note in notes:
                self.note_ids[note["id"]] = incident_id
        self.audit_logs: list[dict] = sorted(
            (clone(a) for a in workspace.audit_logs), key=lambda a: a["id"]
        )
        self.shares: dict[int, dict] = {}
        self._share_ids: dict[int, int] = {}  # incident id -> its live share token's id
        # incident id -> its activity log, made from the generated past on first use, then
        # appended to by every write (ours or a person's)
        self.activity: dict[int, list[dict]] = {}
        self._notes_made: dict[int, list[dict]] | None = None
        # incident id -> member id -> permission granted on that incident alone
        self.access: dict[int, dict[int, str]] = {}
        self.teams: list[dict] = _teams(workspace)
        self.tokens: dict[str, Token] = {}
        for token in workspace.tokens:
            self.add_token(token)
        self._next_ids = {
            "incident": max(self.incidents, default=0) + 1,
            "occurrence": max(self.occurrences, default=0) + 1,
            "note": max(self.note_ids, default=0) + 1,
            "audit": max((a["id"] for a in self.audit_logs), default=0) + 1,
            "share": 5000,
            "activity": 10_000_000,
            "secret": max((i.get("secret_id") or 0 for i in self.incidents.values()), default=0)
            + 1,
        }

    def _index_occurrence(self, occurrence: dict) -> None:
        self.occurrences[occurrence["id"]] = occurrence
        self._occurrence_ids.append(occurrence["id"])  # callers keep it ascending
        self.occurrences_by_incident.setdefault(occurrence["incident_id"], []).append(occurrence)
        source = occurrence.get("source") or {}
        if "id" in source:
            self.sources_by_incident.setdefault(occurrence["incident_id"], set()).add(source["id"])

    def _writable(self, incident_id: int) -> dict:
        """The incident, cloned on its first change so the Workspace's copy stays as made."""
        incident = self._incident(incident_id)
        self._history(incident_id)
        if ("incident", incident_id) not in self._owned:
            incident = self.incidents[incident_id] = clone(incident)
            self._owned.add(("incident", incident_id))
        return incident

    def _writable_member(self, member_id: int) -> dict | None:
        member = self.members.get(member_id)
        if member is not None and ("member", member_id) not in self._owned:
            member = self.members[member_id] = clone(member)
            self._owned.add(("member", member_id))
        return member

    def _next(self, kind: str) -> int:
        value = self._next_ids[kind]
        self._next_ids[kind] = value + 1
        return value

    def now(self) -> str:
        return iso(self.clock())

    def _announce(self, action: str, incident_id: int, **extra: Any) -> None:
        """Tell the webhook sender (if any) what changed; a copy, taken under the lock."""
        if self.notify is not None:
            self.notify(action, clone(self.incidents[incident_id]), clone(extra))

    def add_token(self, token: Token) -> None:
        if not token.secret:
            token.secret = "sandbox-" + secrets.token_hex(16)
        self.tokens[token.secret] = token

    def _incident(self, incident_id: int) -> dict:
        incident = self.incidents.get(incident_id)
        if incident is None:
            raise ApiError(404, NOT_FOUND)
        return incident

    def _audit(
        self,
        actor: Actor,
        event_name: str,
        action_type: str,
        target_ids: Iterable[Any],
        data: dict | None = None,
        ip_address: str | None = None,
    ) -> None:
        member = self.members.get(actor.member_id) or {}
        if ip_address is None:  # a person's browser is not on the API's loopback
            ip_address = "192.0.2.10" if isinstance(actor, Human) else "127.0.0.1"
        self.audit_logs.append(
            {
                "id": self._next("audit"),
                "api_token_id": token_id_of(actor),
                "member_id": actor.member_id,
                "member_email": member.get("email"),
                "member_name": member.get("name"),
                "date": self.now(),
                "data": data,
                "event_name": event_name,
                "action_type": action_type,
                "target_ids": [str(t) for t in target_ids],
                "ip_address": ip_address,
            }
        )

    def _member_brief(self, member_id: int | None) -> dict | None:
        member = self.members.get(member_id) if member_id is not None else None
        if member is None:
            return None
        return {k: member.get(k) for k in ("id", "name", "email", "access_level")}

    def _history(self, incident_id: int) -> list[dict]:
        """The incident's activity log; its past is made from the incident as generated."""
        log = self.activity.get(incident_id)
        if log is None:
            # made before the incident's first change (`_writable`), so from its past alone
            source = self.incidents[incident_id]
            log = self.activity[incident_id] = []
            past = generated_past(
                source, self.workspace.seed, list(self.members), self.workspace.now)
            # the notes it was generated with, each an ADD_NOTE at its date (README)
            past += [(n["created_at"], "ADD_NOTE", {"note_id": n["id"]}, n.get("member_id"),
                      n.get("api_token_id"))
                     for n in self._generated_notes().get(incident_id, [])]
            for moment, key, data, member_id, token_id in sorted(past, key=lambda p: p[0]):
                self._activity_entry(log, incident_id, moment, key, data, member_id, token_id)
        return log

    def _generated_notes(self) -> dict[int, list[dict]]:
        """The workspace's generated notes by incident (not those written since)."""
        if self._notes_made is None:
            self._notes_made = {}
            for note in self.workspace.notes:
                self._notes_made.setdefault(note["incident_id"], []).append(note)
        return self._notes_made

    def _activity_entry(self, log: list[dict], incident_id: int, moment: str, key: str,
                        data: Any, member_id: int | None, token_id: str | None) -> None:
        log.append({
            "id": self._next("activity"),
            "member": self._member_brief(member_id),
            "api_token_id": token_id,
            "created_at": moment,
            "updated_at": None,
            "content": {"type": "action", "content_key": key, "data": data},
            "incident_id": incident_id,
        })

    def _act(self, actor: Actor, incident_id: int, key: str, data: Any = None) -> None:
        """Record a write in the incident's activity log, dated now."""
        log = self._history(incident_id)
        self._activity_entry(log, incident_id, self.now(), key, data, actor.member_id,
                             token_id_of(actor))


def reopen_fields(incident: dict) -> None:
    """An incident closed no more: back to ASSIGNED (if it has an assignee) or TRIGGERED."""
    assigned = incident.get("assignee_id") is not None or incident.get("assignee_email")
    incident.update(
        status="ASSIGNED" if assigned else "TRIGGERED",
        ignored_at=None,
        ignorer_id=None,
        ignorer_api_token_id=None,
        ignore_reason=None,
        resolved_at=None,
        resolver_id=None,
        resolver_api_token_id=None,
        secret_revoked=False,
    )


def _teams(workspace: Workspace) -> list[dict]:
    """The workspace's teams: the global "All incidents" team, and one per access level
    below manager holding those members (the generator makes no teams of its own)."""
    url = f"https://dashboard.gitguardian.com/workspace/{workspace.workspace_id}/settings/teams"
    teams = [{"id": 1, "name": "All incidents", "description": "Every incident of the workspace",
              "is_global": True, "gitguardian_url": f"{url}/1"}]
    for number, (level, name) in enumerate(
            (("member", "Developers"), ("restricted", "Contractors")), start=2):
        if any(m.get("access_level") == level for m in workspace.members):
            teams.append({"id": number, "name": name,
                          "description": f"Workspace members of level {level}",
                          "is_global": False,
                          "gitguardian_url": f"{url}/{number}"})
    return teams


def generated_past(incident: Mapping[str, Any], seed: int, member_ids: list[int],
                   now: datetime) -> list[tuple[str, str, Any, int | None, str | None]]:
    """The history an incident as generated implies: (time, content_key, data, member, token).

    Triggered at `triggered_at`; an assignee was assigned a while after, and about one
    assigned incident in four was first assigned to someone else (a reassignment); a
    closed incident was closed at `resolved_at` / `ignored_at` by its resolver or ignorer;
    about one incident in six (and every regression) was resolved and reopened once before
    its present state. Deterministic from the seed and the incident id.
    """
    import random

    rng = random.Random(f"history-{seed}-{incident['id']}")
    triggered = parse_time(incident.get("triggered_at") or incident["date"], "triggered_at")
    status = incident.get("status")
    closed_at_text = incident.get("resolved_at") if status == "RESOLVED" else (
        incident.get("ignored_at") if status == "IGNORED" else None)
    end = parse_time(closed_at_text, "closed_at") if closed_at_text else None
    horizon = end or max(triggered + timedelta(hours=1),
                         parse_time(incident.get("date") or iso(triggered), "date"))
    if end is None:
        horizon = min(triggered + timedelta(days=rng.uniform(0.5, 20)), now)
    span = max((horizon - triggered).total_seconds(), 1.0)

    def at(fraction: float) -> str:
        return iso(triggered + timedelta(seconds=span * fraction))

    past: list[tuple[str, str, Any, int | None, str | None]] = [
        (iso(triggered), "TRIGGER", {"triggered_at": offset_time(
            incident.get("date") or iso(triggered))}, None, None)]
    assignee = incident.get("assignee_id")
    if assignee is not None:
        others = [m for m in member_ids if m != assignee]
        if others and rng.random() < 0.25:
            past.append((at(0.1), "ASSIGN", {"assignees": [rng.choice(others)]}, None, None))
        past.append((at(0.2), "ASSIGN", {"assignees": [assignee]}, None, None))
    if incident.get("regression") or rng.random() < 1 / 6:
        past.append((at(0.4), "RESOLVE", {"revoked": False}, None, None))
        past.append((at(0.6), "UNRESOLVE", None, None, None))
    if status == "RESOLVED" and closed_at_text:
        past.append((closed_at_text, "RESOLVE", {"revoked": bool(incident.get("secret_revoked"))},
                     incident.get("resolver_id"), incident.get("resolver_api_token_id")))
    elif status == "IGNORED" and closed_at_text:
        past.append((closed_at_text, "IGNORE", {"ignore_reason": incident.get("ignore_reason")},
                     incident.get("ignorer_id"), incident.get("ignorer_api_token_id")))
    return past
