"""The sandbox's in-memory GitGuardian workspace: queries, pagination, writes and events.

Plain Python, no HTTP: the server (sandbox/server.py) turns requests into calls here and
`ApiError`s into `{"detail": ...}` answers. Every API object is kept as the dict the API
returns, so an answer is a copy of what is stored. One lock guards every mutation; reads take
it too so a page is never built from a half-applied write.
"""
from __future__ import annotations

import base64
import binascii
import gc
import json
import secrets
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.workspace import Token, Workspace

OPEN_STATUSES = ("TRIGGERED", "ASSIGNED")
CLOSED_STATUSES = ("RESOLVED", "IGNORED")
IGNORE_REASONS = ("test_credential", "false_positive", "low_risk", "invalid")
VALIDITIES = ("valid", "invalid", "failed_to_check", "no_checker", "unknown")
CONFLICT = "Request conflicts with existing data."
NOT_FOUND = "Not found."
PERMISSION_DENIED = "Permission denied."
INVALID_KEY = "Invalid API key."
DEFAULT_SHARE_LIFESPAN_HOURS = 720  # the workspace default when a share asks for 0
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
# A member's user account id (notes' `user_id`, `user.logged_in` targets) differs from the
# member id in every recording; the sandbox derives it so that the two never coincide.
USER_ID_OFFSET = 1_000_000

# Audit-log event names. As recorded: incident events are `secret_incident.*`, and a share
# link is `incident_token.created` with the link's token id as target and the incident as
# `data.issue_id`. The verbs below and the note events appear in no recording (README).
EVENT_NAMES = {
    "assign": "secret_incident.assigned",
    "unassign": "secret_incident.unassigned",
    "resolve": "secret_incident.resolved",
    "ignore": "secret_incident.ignored",
    "reopen": "secret_incident.reopened",
    "update": "secret_incident.updated",
    "grant_access": "secret_incident.access_granted",
    "revoke_access": "secret_incident.access_revoked",
    "share": "incident_token.created",
    "unshare": "incident_token.revoked",
    "note_create": "secret_incident_note.created",
    "note_update": "secret_incident_note.updated",
    "note_delete": "secret_incident_note.deleted",
}
_WRITE_OF_EVENT = {name: action for action, name in EVENT_NAMES.items()}


def audit_write(entry: Mapping[str, Any]) -> tuple[str, str] | None:
    """(write, incident id) of an audit entry the sandbox wrote for a write, else None.

    The incident is the target, except for share links (the token is) and notes (the note
    is), whose incident is in `data`.
    """
    action = _WRITE_OF_EVENT.get(entry.get("event_name") or "")
    if action is None:
        return None
    data = entry.get("data") or {}
    if action in ("share", "unshare"):
        return action, str(data.get("issue_id"))
    if action.startswith("note_"):
        return action, str(data.get("incident_id"))
    return action, str((entry.get("target_ids") or [None])[0])

# A scope implies others: share includes write includes read.
_IMPLIED_SCOPES = {
    "incidents:share": ("incidents:write", "incidents:read"),
    "incidents:write": ("incidents:read",),
    "members:write": ("members:read",),
    "teams:write": ("teams:read",),
    "sources:write": ("sources:read",),
}


@dataclass(frozen=True)
class Human:
    """A workspace member acting in the dashboard, with no API token.

    The store's writes take an actor: a `Token` (an API call) or a `Human`. A human's writes
    record the member and no token id, as the real platform does for dashboard edits.
    """

    member_id: int


Actor = Token | Human


def token_id_of(actor: Actor) -> str | None:
    """The acting API token's id; None for a human in the dashboard."""
    return actor.id if isinstance(actor, Token) else None


class ApiError(Exception):
    """An answer other than success: HTTP status and the `detail` text of the body."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def _clone(value: Any) -> Any:
    """A deep copy of JSON data; several times faster than copy.deepcopy on API objects."""
    return json.loads(json.dumps(value))


def iso(moment: datetime) -> str:
    """The API's time format: UTC, microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str, name: str) -> datetime:
    """A filter's date or datetime value; a bare date means its midnight UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name}: enter a valid date/time.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def token_has_scope(token: Token, scope: str) -> bool:
    granted = set(token.scopes)
    for held in token.scopes:
        granted.update(_IMPLIED_SCOPES.get(held, ()))
    return scope in granted


# ---------------------------------------------------------------- query parameters


class Query:
    """Query parameters of one request, with typed accessors that answer 400 on bad values.

    Unknown names are simply never read: the real API ignores them too.
    """

    def __init__(self, params: Mapping[str, str]):
        self.params = {k: v for k, v in params.items() if v is not None}

    def text(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else None

    def many(self, name: str) -> list[str] | None:
        value = self.text(name)
        return None if value is None else [p.strip() for p in value.split(",") if p.strip()]

    def integers(self, name: str) -> list[int] | None:
        values = self.many(name)
        if values is None:
            return None
        try:
            return [int(v) for v in values]
        except ValueError:
            raise ApiError(400, f"{name}: a valid integer is required.") from None

    def integer(self, name: str) -> int | None:
        values = self.integers(name)
        return None if values is None else values[0]

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ApiError(400, f"{name}: must be a valid boolean.")

    def time(self, name: str) -> datetime | None:
        value = self.text(name)
        return None if value is None else parse_time(value, name)

    def time_text(self, name: str) -> str | None:
        """The time in the stored text format, which compares in time order."""
        value = self.time(name)
        return None if value is None else iso(value)

    def at_least(self, name: str, length: int) -> str | None:
        value = self.text(name)
        if value is not None and len(value) < length:
            raise ApiError(400, f"{name}: ensure this field has at least {length} characters.")
        return value

    def per_page(self) -> int:
        value = self.text("per_page")
        if value is None:
            return DEFAULT_PER_PAGE
        try:
            number = int(value)
        except ValueError:
            raise ApiError(400, "per_page: a valid integer is required.") from None
        if not 1 <= number <= MAX_PER_PAGE:
            raise ApiError(400, f"per_page: must be between 1 and {MAX_PER_PAGE}.")
        return number


# ---------------------------------------------------------------- pagination

SortKey = Callable[[dict[str, Any]], Any]


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    prev_cursor: str | None
    per_page: int


def _encode_cursor(position: Any, reverse: bool) -> str:
    text = ("r=1&" if reverse else "") + "p=" + json.dumps(position, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[Any, bool]:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        reverse = text.startswith("r=1&")
        if reverse:
            text = text[4:]
        if not text.startswith("p="):
            raise ValueError(text)
        position = json.loads(text[2:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "Invalid cursor.") from None
    return (tuple(position) if isinstance(position, list) else position), reverse


def paginate(items: list[dict], key: SortKey, descending: bool, query: Query) -> Page:
    """Keyset pagination: a cursor holds the sort key of the page's edge item.

    Keyset rather than offsets so that a caller who changes incidents while it pages through
    a filtered list (assigning TRIGGERED ones, say) never skips any. `items` are sorted in
    ascending `key` order; `descending` serves them reversed.
    """
    per_page = query.per_page()
    keys = [key(item) for item in items]
    cursor = query.text("cursor")
    position, reverse = _decode_cursor(cursor) if cursor else (None, False)
    total = len(items)
    if position is None:
        if descending:
            start, stop = max(0, total - per_page), total
        else:
            start, stop = 0, min(per_page, total)
    else:
        try:
            # forward on ascending, or backward on descending: items after the key
            after = (not descending) != reverse
            if after:
                start = bisect_right(keys, position)
                stop = min(total, start + per_page)
            else:
                stop = bisect_left(keys, position)
                start = max(0, stop - per_page)
        except TypeError:
            raise ApiError(400, "Invalid cursor.") from None
    chunk = items[start:stop]
    chunk_keys = keys[start:stop]
    has_before, has_after = start > 0, stop < total  # in ascending terms
    if descending:
        chunk, chunk_keys = chunk[::-1], chunk_keys[::-1]
        has_next, has_prev = has_before, has_after
    else:
        has_next, has_prev = has_after, has_before
    next_cursor = _encode_cursor(chunk_keys[-1], False) if chunk and has_next else None
    prev_cursor = _encode_cursor(chunk_keys[0], True) if chunk and has_prev else None
    return Page([_clone(i) for i in chunk], next_cursor, prev_cursor, per_page)


def scan_page(
    ids: list[int], items: Mapping[int, dict], keep: Callable[[dict], bool], query: Query
) -> Page:
    """Keyset pagination in ascending id order that filters only as far as the page needs.

    The common call (a filtered list, default order, per_page=100) then costs one page of
    work instead of a pass over every incident.
    """
    per_page = query.per_page()
    cursor = query.text("cursor")
    position, reverse = _decode_cursor(cursor) if cursor else (None, False)
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
        raise ApiError(400, "Invalid cursor.")
    found: list[dict] = []
    if not reverse:
        index = 0 if position is None else bisect_right(ids, position)
        for item_id in ids[index:]:
            if keep(items[item_id]):
                found.append(items[item_id])
                if len(found) > per_page:
                    break
        page, has_next = found[:per_page], len(found) > per_page
        has_prev = position is not None and any(
            keep(items[i]) for i in reversed(ids[:index]))
    else:
        index = bisect_left(ids, position)
        for item_id in reversed(ids[:index]):
            if keep(items[item_id]):
                found.append(items[item_id])
                if len(found) > per_page:
                    break
        page, has_prev = found[:per_page][::-1], len(found) > per_page
        has_next = any(keep(items[i]) for i in ids[index:])
    next_cursor = _encode_cursor(page[-1]["id"], False) if page and has_next else None
    prev_cursor = _encode_cursor(page[0]["id"], True) if page and has_prev else None
    return Page([_clone(i) for i in page], next_cursor, prev_cursor, per_page)


def _ordering(
    query: Query, allowed: Iterable[str], default: str = "id"
) -> tuple[SortKey, bool]:
    """Sort key and direction from `ordering`; unknown orderings fall back to the default."""
    value = query.text("ordering") or default
    descending = value.startswith("-")
    field_name = value.lstrip("-+")
    if field_name not in allowed:
        field_name, descending = default.lstrip("-"), default.startswith("-")
    if field_name == "id":
        return (lambda item: item["id"]), descending

    def key(item: dict[str, Any]) -> tuple:
        value = item.get(field_name)
        # nulls sort after values; the id breaks ties so every key is unique
        if value is None:
            return (True, 0 if field_name == "risk_score" else "", item["id"])
        return (False, value, item["id"])

    return key, descending


def _sorted(items: Iterable[dict], key: SortKey) -> list[dict]:
    return sorted(items, key=key)


# ---------------------------------------------------------------- the store


class Store:
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
        self.sources: dict[int, dict] = {s["id"]: _clone(s) for s in workspace.sources}
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
            self.notes.setdefault(note["incident_id"], []).append(_clone(note))
        self.note_ids: dict[int, int] = {}  # note id -> incident id
        for incident_id, notes in self.notes.items():
            for note in notes:
                self.note_ids[note["id"]] = incident_id
        self.audit_logs: list[dict] = sorted(
            (_clone(a) for a in workspace.audit_logs), key=lambda a: a["id"]
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

    # ------------------------------------------------------------ helpers

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
            incident = self.incidents[incident_id] = _clone(incident)
            self._owned.add(("incident", incident_id))
        return incident

    def _writable_member(self, member_id: int) -> dict | None:
        member = self.members.get(member_id)
        if member is not None and ("member", member_id) not in self._owned:
            member = self.members[member_id] = _clone(member)
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
            self.notify(action, _clone(self.incidents[incident_id]), _clone(extra))

    def add_token(self, token: Token) -> None:
        if not token.secret:
            token.secret = "sandbox-" + secrets.token_hex(16)
        self.tokens[token.secret] = token

    def authenticate(self, secret: str | None) -> Token:
        token = self.tokens.get(secret or "")
        if token is None or token.status != "active":
            raise ApiError(401, INVALID_KEY)
        return token

    @staticmethod
    def require(token: Token, scope: str) -> None:
        if not token_has_scope(token, scope):
            raise ApiError(403, PERMISSION_DENIED)

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

    def token_info(self, token: Token) -> dict:
        ended = iso(self.workspace.now - timedelta(days=1))
        return {
            "id": token.id,
            "name": token.name,
            "type": token.type,
            "scopes": list(token.scopes),
            "member_id": token.member_id,
            "workspace_id": self.workspace_id,
            "created_at": iso(self.workspace.now - timedelta(days=90)),
            "last_used_at": self.now(),
            "expire_at": ended if token.status == "expired" else None,
            "revoked_at": ended if token.status == "revoked" else None,
            "status": token.status,
            "creator_id": token.member_id,
        }

    # ------------------------------------------------------------ activity logs

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

    def list_activity_logs(self, incident_id: int, query: Query) -> Page:
        with self.lock:
            self._incident(incident_id)
            entries = list(self._history(incident_id))
            keys = query.many("content_key")  # unrecorded filter, harmless when unsent
            if keys is not None:
                entries = [e for e in entries if e["content"]["content_key"] in set(keys)]
            key, descending = _ordering(query, ("id", "created_at"))
            return paginate(_sorted(entries, key), key, descending, query)

    # ------------------------------------------------------------ tokens, teams, access

    def _token_answer(self, token: Token) -> dict:
        return self.token_info(token)

    def list_tokens(self, query: Query) -> Page:
        with self.lock:
            tokens = [self._token_answer(t) for t in self.tokens.values()]
            for name in ("status", "type"):
                values = query.many(name)
                if values is not None:
                    tokens = [t for t in tokens if t.get(name) in set(values)]
            member_ids = query.integers("member_id")
            if member_ids is not None:
                tokens = [t for t in tokens if t.get("member_id") in set(member_ids)]

            def key(t: dict) -> str:
                return t["id"]

            return paginate(_sorted(tokens, key), key, False, query)

    def get_token(self, token_id: str) -> dict:
        with self.lock:
            for token in self.tokens.values():
                if token.id == token_id:
                    return self._token_answer(token)
            raise ApiError(404, NOT_FOUND)

    def list_teams(self, query: Query) -> Page:
        with self.lock:
            teams = list(self.teams)
            is_global = query.boolean("is_global")
            if is_global is not None:
                teams = [t for t in teams if t["is_global"] == is_global]
            search = query.text("search")
            if search is not None:
                teams = [t for t in teams if search.casefold() in t["name"].casefold()]
            key, descending = _ordering(query, ("id",))
            return paginate(_sorted(teams, key), key, descending, query)

    def permission_of(self, member: dict, incident: dict) -> str | None:
        """What a member may do on an incident: managers and owners see every incident; a
        member or restricted member, those assigned to them or granted to them."""
        if not member.get("active", True):
            return None
        granted = self.access.get(incident["id"], {}).get(member["id"])
        if member.get("access_level") in ("owner", "manager"):
            return "full_access"
        if granted:
            return granted
        if incident.get("assignee_id") == member["id"]:
            return "can_edit"
        return None

    def list_incident_members(self, incident_id: int, query: Query) -> Page:
        with self.lock:
            incident = self._incident(incident_id)
            rows = []
            for member in self.members.values():
                permission = self.permission_of(member, incident)
                if permission is None:
                    continue
                rows.append({"id": member["id"], "member_id": member["id"],
                             "role": member.get("access_level"), "name": member.get("name"),
                             "email": member.get("email"), "incident_id": incident_id,
                             "incident_permission": permission})
            permissions = query.many("incident_permission")
            if permissions is not None:
                rows = [r for r in rows if r["incident_permission"] in set(permissions)]
            levels = query.many("access_level")
            if levels is not None:
                rows = [r for r in rows if r["role"] in set(levels)]
            search = query.text("search")
            if search is not None:
                needle = search.casefold()
                rows = [r for r in rows if needle in (r["email"] or "").casefold()
                        or needle in (r["name"] or "").casefold()]
            key, descending = _ordering(query, ("id",))
            return paginate(_sorted(rows, key), key, descending, query)

    def list_member_incidents(self, member_id: int, query: Query) -> Page:
        """The incidents a member has access to, filtered as the incident list is."""
        with self.lock:
            member = self.members.get(member_id)
            if member is None:
                raise ApiError(404, NOT_FOUND)
            matches = self._incident_filter(query)

            def keep(incident: dict) -> bool:
                return self.permission_of(member, incident) is not None and matches(incident)

            key, descending = _ordering(
                query, ("id", "date", "resolved_at", "ignored_at", "risk_score"))
            if not descending and (query.text("ordering") or "id").lstrip("+") == "id":
                return scan_page(self._incident_ids, self.incidents, keep, query)
            chosen = _sorted((i for i in self.incidents.values() if keep(i)), key)
            return paginate(chosen, key, descending, query)

    PERMISSIONS = ("can_view", "can_edit", "full_access")

    def grant_access(self, actor: Actor, incident_id: int, *, member_id: int | None = None,
                     email: str | None = None, permission: Any = "can_edit") -> dict:
        if permission not in self.PERMISSIONS:
            raise ApiError(400, "permission: a valid choice is required: "
                           + ", ".join(self.PERMISSIONS) + ".")
        with self.lock:
            self._incident(incident_id)
            member = self._find_member(email=email, member_id=member_id)
            self.access.setdefault(incident_id, {})[member["id"]] = permission
            self._audit(actor, EVENT_NAMES["grant_access"], "UPDATE", [incident_id],
                        {"member_id": member["id"], "permission": permission})
            self._act(actor, incident_id, "GRANT_ACCESS", {"users": [member["id"]]})
            self._announce("incident_access_granted", incident_id, member=_member_brief(member))
            return {"member_id": member["id"], "incident_id": incident_id,
                    "incident_permission": permission}

    def revoke_access(self, actor: Actor, incident_id: int, *, member_id: int | None = None,
                      email: str | None = None) -> None:
        with self.lock:
            self._incident(incident_id)
            member = self._find_member(email=email, member_id=member_id)
            if member["id"] not in self.access.get(incident_id, {}):
                raise ApiError(404, NOT_FOUND)
            del self.access[incident_id][member["id"]]
            self._audit(actor, EVENT_NAMES["revoke_access"], "UPDATE", [incident_id],
                        {"member_id": member["id"]})
            self._act(actor, incident_id, "REMOVE_ACCESS", {"users": [member["id"]]})
            self._announce("incident_access_revoked", incident_id, member=_member_brief(member))

    def update_incident(self, actor: Actor, incident_id: int, body: Mapping[str, Any]) -> dict:
        """PATCH: `severity` and/or `custom_tags` ([{key, value}]); anything else ignored."""
        severity, tags = body.get("severity"), body.get("custom_tags")
        if severity is None and tags is None:
            raise ApiError(400, "At least one of severity and custom_tags must be given.")
        if severity is not None and severity not in SEVERITIES:
            raise ApiError(400, "severity: a valid choice is required: "
                           + ", ".join(SEVERITIES) + ".")
        if tags is not None and (not isinstance(tags, list) or not all(
                isinstance(t, dict) and isinstance(t.get("key"), str) and t["key"]
                and isinstance(t.get("value"), (str, type(None))) for t in tags)):
            raise ApiError(400, "custom_tags: a list of {key, value} objects is required.")
        with self.lock:
            incident = self._writable(incident_id)
            if severity is not None and severity != incident.get("severity"):
                previous = incident.get("severity")
                incident["severity"] = severity
                self._act(actor, incident_id, "SET_SEVERITY",
                          {"severity": severity, "previous_severity": previous})
                self._announce("incident_severity_changed", incident_id)
            if tags is not None:
                incident["custom_tags"] = [
                    {"id": self._custom_tag_id(t["key"], t.get("value")), "key": t["key"],
                     "value": t.get("value")} for t in tags]
                self._act(actor, incident_id, "SET_CUSTOM_TAGS",
                          {"custom_tags": [{"key": t["key"], "value": t.get("value")}
                                           for t in tags]})
            self._audit(actor, EVENT_NAMES["update"], "UPDATE", [incident_id],
                        {k: body[k] for k in ("severity", "custom_tags") if k in body})
            return self._answer(incident)

    @staticmethod
    def _custom_tag_id(key: str, value: str | None) -> str:
        import uuid
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-custom-tag:{key}={value}"))

    # ------------------------------------------------------------ incidents: reads

    def _incident_filter(self, query: Query) -> Callable[[dict], bool]:
        tests: list[Callable[[dict], bool]] = []
        for name in ("status", "severity", "validity"):
            values = query.many(name)
            if values is not None:
                allowed = set(values)
                tests.append(lambda i, n=name, a=allowed: i.get(n) in a)
        email = query.text("assignee_email")
        if email is not None:
            wanted = email.strip().casefold()
            tests.append(lambda i: (i.get("assignee_email") or "").casefold() == wanted)
        for name in (
            "assignee_id",
            "ignorer_id",
            "resolver_id",
        ):
            ids = query.integers(name)
            if ids is not None:
                tests.append(lambda i, n=name, a=set(ids): i.get(n) in a)
        for name in ("ignorer_api_token_id", "resolver_api_token_id"):
            values = query.many(name)
            if values is not None:
                tests.append(lambda i, n=name, a=set(values): i.get(n) in a)
        for field_name in ("date", "triggered_at"):
            before = query.time_text(f"{field_name}_before")
            after = query.time_text(f"{field_name}_after")
            if before is not None:
                tests.append(lambda i, f=field_name, b=before: _before(i.get(f), b))
            if after is not None:
                tests.append(lambda i, f=field_name, a=after: _after(i.get(f), a))
        tags, excluded = query.many("tags"), query.many("exclude_tags")
        if tags is not None:
            tests.append(lambda i: _has_any_tag(i.get("tags") or [], tags))
        if excluded is not None:
            tests.append(lambda i: not _has_any_tag(i.get("tags") or [], excluded))
        groups = query.many("detector_group_name")
        if groups is not None:
            tests.append(lambda i, g=set(groups): (i.get("detector") or {}).get(
                "detector_group_name") in g)
        feedback = query.boolean("feedback")
        if feedback is not None:
            tests.append(lambda i: bool(i.get("feedback_list")) == feedback)
        tag_ids = query.many("custom_tags")
        if tag_ids is not None:
            tests.append(lambda i, w=set(tag_ids): any(
                str(t.get("id")) in w for t in i.get("custom_tags") or []))
        tag_key, tag_value = query.text("custom_tag_key"), query.text("custom_tag_value")
        if tag_key is not None:
            tests.append(lambda i: any(t.get("key") == tag_key for t in i.get("custom_tags") or []))
        if tag_value is not None:
            tests.append(lambda i: any(
                t.get("value") == tag_value for t in i.get("custom_tags") or []))
        if query.boolean("only_on_provider_archived_sources"):
            tests.append(self._only_on_archived_sources)
        low, high = query.integer("risk_score_min"), query.integer("risk_score_max")
        if low is not None:
            tests.append(lambda i: (i.get("risk_score") or 0) >= low)
        if high is not None:
            tests.append(lambda i: (i.get("risk_score") or 0) <= high)
        return lambda incident: all(test(incident) for test in tests)

    def _only_on_archived_sources(self, incident: dict) -> bool:
        """Every source the incident was seen on is archived at its provider."""
        sources = self.sources_by_incident.get(incident["id"], ())
        return bool(sources) and all(
            (self.sources.get(s, {}).get("provider_metadata") or {}).get("archived")
            for s in sources)

    def list_incidents(self, query: Query, *, source_id: int | None = None) -> Page:
        with self.lock:
            if source_id is not None and source_id not in self.sources:
                raise ApiError(404, NOT_FOUND)
            key, descending = _ordering(
                query, ("id", "date", "resolved_at", "ignored_at", "risk_score")
            )
            matches = self._incident_filter(query)
            if source_id is None:
                keep = matches
            else:
                def keep(incident: dict) -> bool:
                    sources = self.sources_by_incident.get(incident["id"], ())
                    return source_id in sources and matches(incident)
            if not descending and (query.text("ordering") or "id").lstrip("+") == "id":
                return scan_page(self._incident_ids, self.incidents, keep, query)
            chosen = [i for i in self.incidents.values() if keep(i)]
            if query.text("ordering"):
                chosen = _sorted(chosen, key)  # the dict is kept in id order already
            return paginate(chosen, key, descending, query)

    def get_incident(self, incident_id: int, query: Query) -> dict:
        count = query.integer("with_occurrences")
        count = 20 if count is None else count
        if not 0 <= count <= 100:
            raise ApiError(400, "with_occurrences: must be between 0 and 100.")
        with self.lock:
            incident = _clone(self._incident(incident_id))
            if count:
                incident["occurrences"] = _clone(
                    self.occurrences_by_incident.get(incident_id, [])[:count]
                )
            return incident

    def _answer(self, incident: dict) -> dict:
        answer = _clone(incident)
        answer["occurrences"] = None
        return answer

    # ------------------------------------------------------------ incidents: writes

    def assign(
        self,
        actor: Actor,
        incident_id: int,
        *,
        email: str | None = None,
        member_id: int | None = None,
    ) -> dict:
        if (email is None) == (member_id is None):
            raise ApiError(400, "Exactly one of email and member_id must be given.")
        with self.lock:
            incident = self._writable(incident_id)
            member = self._find_member(email=email, member_id=member_id)
            if incident["status"] not in OPEN_STATUSES:
                raise ApiError(409, CONFLICT)
            same = incident["status"] == "ASSIGNED" and incident.get("assignee_id") == member["id"]
            if same and self.strict_reassign:
                raise ApiError(409, CONFLICT)
            had = incident.get("assignee_id")
            # Otherwise the real API answers 200 and records (and e-mails) the assignment again.
            incident.update(
                status="ASSIGNED", assignee_id=member["id"], assignee_email=member["email"]
            )
            self._audit(actor, EVENT_NAMES["assign"], "UPDATE", [incident_id],
                        {"assignee_id": member["id"]})
            self._act(actor, incident_id, "ASSIGN", {"assignees": [member["id"]]})
            self._announce("incident_reassigned" if had is not None and had != member["id"]
                           else "incident_assigned", incident_id)
            return self._answer(incident)

    def _find_member(self, *, email: str | None, member_id: int | None) -> dict:
        if member_id is not None:
            member = self.members.get(member_id)
        else:
            wanted = (email or "").strip().casefold()
            member = next(
                (m for m in self.members.values() if m["email"].strip().casefold() == wanted), None
            )
        if member is None or not member.get("active", True):
            raise ApiError(404, NOT_FOUND)
        return member

    def unassign(self, actor: Actor, incident_id: int) -> dict:
        with self.lock:
            incident = self._writable(incident_id)
            assigned = incident.get("assignee_id") is not None or incident.get("assignee_email")
            closed = incident["status"] in CLOSED_STATUSES
            if not (incident["status"] == "ASSIGNED" or (closed and assigned)):
                raise ApiError(409, CONFLICT)
            # "Unassigning a resolved incident will not update the status": a closed one keeps
            # its status and loses its assignee; an open one goes back to TRIGGERED.
            incident.update(assignee_id=None, assignee_email=None)
            if not closed:
                incident["status"] = "TRIGGERED"
            previous = incident.get("assignee_id")
            self._audit(actor, EVENT_NAMES["unassign"], "UPDATE", [incident_id])
            self._act(actor, incident_id, "UNASSIGN", {"assignees": [previous]})
            self._announce("incident_unassigned", incident_id)
            return self._answer(incident)

    def resolve(self, actor: Actor, incident_id: int, secret_revoked: Any = None) -> dict:
        if secret_revoked is None:
            secret_revoked = False  # optional in the API's schema
        if not isinstance(secret_revoked, bool):
            raise ApiError(400, "secret_revoked: must be a valid boolean.")
        with self.lock:
            incident = self._writable(incident_id)
            if incident["status"] not in OPEN_STATUSES:
                raise ApiError(409, CONFLICT)
            incident.update(
                status="RESOLVED",
                resolved_at=self.now(),
                resolver_id=actor.member_id,
                resolver_api_token_id=token_id_of(actor),
                secret_revoked=secret_revoked,
            )
            self._audit(actor, EVENT_NAMES["resolve"], "UPDATE", [incident_id],
                        {"secret_revoked": secret_revoked})
            self._act(actor, incident_id, "RESOLVE", {"revoked": secret_revoked})
            self._announce("incident_resolved", incident_id)
            return self._answer(incident)

    def ignore(self, actor: Actor, incident_id: int, ignore_reason: Any) -> dict:
        if ignore_reason not in IGNORE_REASONS:
            raise ApiError(400, "ignore_reason: a valid choice is required: "
                           + ", ".join(IGNORE_REASONS) + ".")
        with self.lock:
            incident = self._writable(incident_id)
            if incident["status"] not in OPEN_STATUSES:
                raise ApiError(409, CONFLICT)
            incident.update(
                status="IGNORED",
                ignored_at=self.now(),
                ignorer_id=actor.member_id,
                ignorer_api_token_id=token_id_of(actor),
                ignore_reason=ignore_reason,
            )
            self._audit(actor, EVENT_NAMES["ignore"], "UPDATE", [incident_id],
                        {"ignore_reason": ignore_reason})
            self._act(actor, incident_id, "IGNORE", {"ignore_reason": ignore_reason})
            self._announce("incident_ignored", incident_id)
            return self._answer(incident)

    def reopen(self, actor: Actor, incident_id: int) -> dict:
        with self.lock:
            incident = self._writable(incident_id)
            if incident["status"] not in CLOSED_STATUSES:
                raise ApiError(409, CONFLICT)
            was = incident["status"]
            self._reopen(incident)
            self._audit(actor, EVENT_NAMES["reopen"], "UPDATE", [incident_id])
            self._act(actor, incident_id, "UNRESOLVE" if was == "RESOLVED" else "REOPEN")
            self._announce("incident_reopened", incident_id)
            return self._answer(incident)

    @staticmethod
    def _reopen(incident: dict) -> None:
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

    def share(
        self,
        actor: Actor,
        incident_id: int,
        *,
        auto_healing: bool = False,
        feedback_collection: bool = True,
        lifespan: int = 0,
    ) -> dict:
        if lifespan < 0:
            raise ApiError(400, "lifespan: must be 0 or more hours.")
        with self.lock:
            incident = self._writable(incident_id)
            if incident_id in self.shares:
                raise ApiError(409, CONFLICT)
            share_token = secrets.token_urlsafe(24)  # a share link is a secret: never seeded
            hours = lifespan or DEFAULT_SHARE_LIFESPAN_HOURS
            share = {
                "share_url": f"https://dashboard.gitguardian.com/share/incidents/{share_token}",
                "incident_id": incident_id,
                "feedback_collection": bool(feedback_collection),
                "auto_healing": bool(auto_healing),
                "token": share_token,
                "expire_at": iso(self.clock() + timedelta(hours=hours)),
                "revoked_at": None,
            }
            self.shares[incident_id] = share
            incident["share_url"] = share["share_url"]
            share_id = self._next("share")
            self._share_ids[incident_id] = share_id
            self._audit(actor, EVENT_NAMES["share"], "CREATE", [share_id],
                        {"issue_id": incident_id, "expire_at": share["expire_at"]})
            self._act(actor, incident_id, "SHARE", {"shared_at": _offset_time(self.now())})
            self._announce("incident_shared_publicly", incident_id)
            return _clone(share)

    def unshare(self, actor: Actor, incident_id: int) -> None:
        with self.lock:
            incident = self._writable(incident_id)
            if incident_id not in self.shares:
                raise ApiError(409, CONFLICT)
            del self.shares[incident_id]
            incident["share_url"] = None
            share_id = self._share_ids.pop(incident_id, 0)
            self._audit(actor, EVENT_NAMES["unshare"], "DELETE", [share_id],
                        {"issue_id": incident_id})
            self._act(actor, incident_id, "UNSHARE", {"unshared_at": _offset_time(self.now())})
            self._announce("incident_unshared_publicly", incident_id)

    # ------------------------------------------------------------ notes

    def list_notes(self, incident_id: int, query: Query) -> Page:
        with self.lock:
            self._incident(incident_id)
            notes = list(self.notes.get(incident_id, []))
            member_ids = query.integers("member_id")
            if member_ids is not None:
                notes = [n for n in notes if n.get("member_id") in set(member_ids)]
            search = query.text("search")
            if search is not None:
                notes = [n for n in notes if search.casefold() in n["comment"].casefold()]
            key, descending = _ordering(query, ("id", "created_at", "updated_at"))
            return paginate(_sorted(notes, key), key, descending, query)

    @staticmethod
    def _check_comment(comment: Any) -> str:
        if not isinstance(comment, str) or not 1 <= len(comment) <= 10_000:
            raise ApiError(400, "comment: must hold 1 to 10000 characters.")
        return comment

    def add_note(self, actor: Actor, incident_id: int, comment: Any) -> dict:
        comment = self._check_comment(comment)
        with self.lock:
            self._incident(incident_id)
            self._history(incident_id)  # its past first, so the note is not in it twice
            note = {
                "id": self._next("note"),
                "member_id": actor.member_id,
                "api_token_id": token_id_of(actor),
                "created_at": self.now(),
                "updated_at": None,
                "comment": comment,
                "issue_id": incident_id,
                "incident_id": incident_id,
                "user_id": actor.member_id + USER_ID_OFFSET,
                "api_token": actor.name if isinstance(actor, Token) else None,
            }
            self.notes.setdefault(incident_id, []).append(note)
            self.note_ids[note["id"]] = incident_id
            self._audit(actor, EVENT_NAMES["note_create"], "CREATE", [note["id"]],
                        {"incident_id": incident_id})
            self._act(actor, incident_id, "ADD_NOTE", {"note_id": note["id"]})
            self._announce("incident_note_created", incident_id)
            return _clone(note)

    def _note(self, actor: Actor, incident_id: int, note_id: int) -> dict:
        self._incident(incident_id)
        note = next((n for n in self.notes.get(incident_id, []) if n["id"] == note_id), None)
        if note is None:
            raise ApiError(404, NOT_FOUND)
        # only the key that wrote it may change it; a human, only a note they wrote by hand
        if note.get("api_token_id") != token_id_of(actor) or (
            isinstance(actor, Human) and note.get("member_id") != actor.member_id
        ):
            raise ApiError(403, PERMISSION_DENIED)
        return note

    def update_note(self, actor: Actor, incident_id: int, note_id: int, comment: Any) -> dict:
        comment = self._check_comment(comment)
        with self.lock:
            note = self._note(actor, incident_id, note_id)
            note.update(comment=comment, updated_at=self.now())
            self._audit(actor, EVENT_NAMES["note_update"], "UPDATE", [note_id],
                        {"incident_id": incident_id})
            self._act(actor, incident_id, "EDIT_NOTE", {"note_id": note_id})
            return _clone(note)

    def delete_note(self, actor: Actor, incident_id: int, note_id: int) -> None:
        with self.lock:
            note = self._note(actor, incident_id, note_id)
            self.notes[incident_id].remove(note)
            del self.note_ids[note_id]
            self._audit(actor, EVENT_NAMES["note_delete"], "DELETE", [note_id],
                        {"incident_id": incident_id})
            self._act(actor, incident_id, "DELETE_NOTE", {"note_id": note_id})

    # ------------------------------------------------------------ occurrences

    def list_occurrences(self, query: Query) -> Page:
        tests: list[Callable[[dict], bool]] = []
        incident_ids = query.integers("incident_id")
        source_ids = query.integers("source_id")
        if source_ids is not None:
            tests.append(lambda o: (o.get("source") or {}).get("id") in set(source_ids))
        source_names = query.many("source_name")
        if source_names is not None:
            tests.append(lambda o: (o.get("source") or {}).get("full_name") in set(source_names))
        source_types = query.many("source_type")
        if source_types is not None:
            tests.append(lambda o: (o.get("source") or {}).get("type") in set(source_types))
        presence = query.many("presence")
        if presence is not None:
            tests.append(lambda o: o.get("presence") in set(presence))
        author_name = query.text("author_name")
        if author_name is not None:
            name_part = author_name.casefold()
            tests.append(lambda o: name_part in (o.get("author_name") or "").casefold())
        author_info = query.at_least("author_info", 3)
        if author_info is not None:
            email_part = author_info.casefold()
            tests.append(lambda o: email_part in (o.get("author_info") or "").casefold())
        sha = query.at_least("sha", 3)
        if sha is not None:
            tests.append(lambda o: (o.get("sha") or "").startswith(sha))
        filepath = query.at_least("filepath", 3)
        if filepath is not None:
            tests.append(lambda o: filepath in (o.get("filepath") or ""))
        tags, excluded = query.many("tags"), query.many("exclude_tags")
        if tags is not None:
            tests.append(lambda o: _has_any_tag(o.get("tags") or [], tags))
        if excluded is not None:
            tests.append(lambda o: not _has_any_tag(o.get("tags") or [], excluded))
        before, after = query.time_text("date_before"), query.time_text("date_after")
        if before is not None:
            tests.append(lambda o: _before(o.get("date"), before))
        if after is not None:
            tests.append(lambda o: _after(o.get("date"), after))
        incident_tests: list[Callable[[dict], bool]] = []
        for name in ("severity", "status", "validity"):
            values = query.many(name)
            if values is not None:
                incident_tests.append(lambda i, n=name, a=set(values): i.get(n) in a)
        assignees = query.integers("incident_assignee_id")
        if assignees is not None:
            incident_tests.append(lambda i, a=set(assignees): i.get("assignee_id") in a)
        key, descending = _ordering(query, ("id", "date"))
        with self.lock:
            if incident_ids is not None:
                pool: Iterable[dict] = (
                    o for i in sorted(set(incident_ids))
                    for o in self.occurrences_by_incident.get(i, [])
                )
            else:
                pool = self.occurrences.values()

            def keep(occurrence: dict) -> bool:
                if not all(test(occurrence) for test in tests):
                    return False
                if not incident_tests:
                    return True
                incident = self.incidents.get(occurrence["incident_id"]) or {}
                return all(test(incident) for test in incident_tests)

            if incident_ids is None and not query.text("ordering"):
                return scan_page(self._occurrence_ids, self.occurrences, keep, query)
            chosen = _sorted((o for o in pool if keep(o)), key)
            return paginate(chosen, key, descending, query)

    # ------------------------------------------------------------ members, sources, logs

    def list_members(self, query: Query) -> Page:
        with self.lock:
            members = list(self.members.values())
            levels = query.many("access_level")
            if levels is not None:
                members = [m for m in members if m.get("access_level") in set(levels)]
            active = query.boolean("active")
            if active is not None:
                members = [m for m in members if bool(m.get("active")) == active]
            search = query.text("search")
            if search is not None:
                needle = search.casefold()
                members = [
                    m for m in members
                    if needle in (m.get("email") or "").casefold()
                    or needle in (m.get("name") or "").casefold()
                ]
            key, descending = _ordering(
                query, ("id", "created_at", "last_login", "email", "name", "access_level")
            )
            return paginate(_sorted(members, key), key, descending, query)

    def get_member(self, member_id: int) -> dict:
        with self.lock:
            member = self.members.get(member_id)
            if member is None:
                raise ApiError(404, NOT_FOUND)
            return _clone(member)

    def list_sources(self, query: Query) -> Page:
        with self.lock:
            sources = list(self.sources.values())
            for name in ("type", "visibility", "health", "source_criticality", "external_id"):
                values = query.many(name)
                if values is not None:
                    sources = [s for s in sources if s.get(name) in set(values)]
            monitored = query.boolean("monitored")
            if monitored is not None:
                sources = [s for s in sources if bool(s.get("monitored")) == monitored]
            scan_status = query.many("last_scan_status")
            if scan_status is not None:
                sources = [s for s in sources
                           if (s.get("last_scan") or {}).get("status") in set(scan_status)]
            search = query.text("search")
            if search is not None:
                sources = [s for s in sources
                           if search.casefold() in (s.get("full_name") or "").casefold()]
            ordering = (query.text("ordering") or "").lstrip("-")
            if ordering == "last_scan_date":
                descending = (query.text("ordering") or "").startswith("-")

                def key(s: dict) -> tuple:
                    return ((s.get("last_scan") or {}).get("date") or "", s["id"])
            else:
                key, descending = _ordering(query, ("id",))
            return paginate(_sorted(sources, key), key, descending, query)

    def get_source(self, source_id: int) -> dict:
        with self.lock:
            source = self.sources.get(source_id)
            if source is None:
                raise ApiError(404, NOT_FOUND)
            return _clone(source)

    def list_audit_logs(self, query: Query) -> Page:
        tests: list[Callable[[dict], bool]] = []
        before, after = query.time_text("date_before"), query.time_text("date_after")
        if before is not None:
            tests.append(lambda a: _before(a.get("date"), before))
        if after is not None:
            tests.append(lambda a: _after(a.get("date"), after))
        for name in ("event_name", "member_email", "member_name", "api_token_id", "ip_address"):
            values = query.many(name)
            if values is not None:
                tests.append(lambda a, n=name, v=set(values): a.get(n) in v)
        member_ids = query.integers("member_id")
        if member_ids is not None:
            tests.append(lambda a: a.get("member_id") in set(member_ids))
        # newest first, as the real endpoint answers
        key, descending = _ordering(query, ("id", "date"), default="-id")
        with self.lock:
            chosen = [a for a in self.audit_logs if all(t(a) for t in tests)]
            if query.text("ordering"):
                chosen = _sorted(chosen, key)
            return paginate(chosen, key, descending, query)

    # ------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of what can change, keyed by int ids: for tests and `--state-file`."""
        with self.lock:
            return {
                "incidents": {k: _clone(v) for k, v in self.incidents.items()},
                "occurrences": {k: _clone(v) for k, v in self.occurrences_by_incident.items()},
                "notes": {k: _clone(v) for k, v in self.notes.items()},
                "audit_logs": _clone(self.audit_logs),
                "shares": {k: _clone(v) for k, v in self.shares.items()},
                "activity": {k: _clone(v) for k, v in self.activity.items()},
                "access": {k: dict(v) for k, v in self.access.items()},
                "members": {k: _clone(v) for k, v in self.members.items()},
            }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load a snapshot written by `snapshot()` (JSON keys are strings)."""
        with self.lock:
            self._owned = {("incident", int(k)) for k in state["incidents"]}
            self._owned |= {("member", int(k)) for k in state["members"]}
            self.incidents = {int(k): v for k, v in sorted(
                state["incidents"].items(), key=lambda kv: int(kv[0]))}
            self._incident_ids = list(self.incidents)
            self.members = {int(k): v for k, v in state["members"].items()}
            self.shares = {int(k): v for k, v in state.get("shares", {}).items()}
            self._share_ids = {k: self._next("share") for k in self.shares}
            self.activity = {int(k): v for k, v in state.get("activity", {}).items()}
            self.access = {int(k): {int(m): p for m, p in v.items()}
                           for k, v in state.get("access", {}).items()}
            self._next_ids["activity"] = max(
                [e["id"] for log in self.activity.values() for e in log] or [10_000_000]) + 1
            self.notes = {int(k): v for k, v in state.get("notes", {}).items()}
            self.note_ids = {n["id"]: i for i, notes in self.notes.items() for n in notes}
            self.audit_logs = list(state.get("audit_logs", []))
            self.occurrences, self.occurrences_by_incident, self.sources_by_incident = {}, {}, {}
            self._occurrence_ids = []
            for occurrences in state.get("occurrences", {}).values():
                for occurrence in occurrences:
                    self._index_occurrence(occurrence)
            self._occurrence_ids.sort()
            self._next_ids.update(
                incident=max(self.incidents, default=0) + 1,
                occurrence=max(self.occurrences, default=0) + 1,
                note=max(self.note_ids, default=0) + 1,
                audit=max((a["id"] for a in self.audit_logs), default=0) + 1,
            )

    # ------------------------------------------------------------ events

    def new_occurrence(
        self,
        incident_id: int,
        *,
        filepath: str | None = "config/settings.py",
        author_email: str = "someone@corp.example",
        author_name: str = "Someone",
        sha: str | None = None,
        source_id: int | None = None,
        tags: list[str] | None = None,
        _announce: bool = True,
    ) -> dict:
        """A new sighting of an incident's secret, as the real scanner would report it.

        A resolved incident reopens as a regression; an ignored one stays ignored.
        """
        with self.lock:
            incident = self._writable(incident_id)
            siblings = self.occurrences_by_incident.get(incident_id, [])
            if source_id is not None:
                source = self.sources.get(source_id)
                if source is None:
                    raise ApiError(404, NOT_FOUND)
            elif siblings and siblings[-1].get("source"):
                source = siblings[-1]["source"]
            else:
                source = next(iter(self.sources.values()), {})
            occurrence_id = self._next("occurrence")
            sha = sha or f"{occurrence_id:040x}"
            occurrence = {
                "id": occurrence_id,
                "incident_id": incident_id,
                "date": self.now(),
                "filepath": filepath,
                "kind": "realtime",
                "presence": "present",
                "matches": [
                    {"name": "apikey", "indice_start": 10, "indice_end": 42,
                     "pre_line_start": 1, "pre_line_end": 1,
                     "post_line_start": None, "post_line_end": None}
                ],
                "tags": list(tags or []),
                "url": f"{source.get('url', 'https://example.invalid')}/commit/{sha}",
                "author_info": author_email,
                "author_name": author_name,
                "sha": sha,
                "change_type": "addition",
                "source": _clone(source),
            }
            self._index_occurrence(occurrence)
            incident["occurrences_count"] = len(self.occurrences_by_incident[incident_id])
            presence = incident.get("secret_presence")
            if isinstance(presence, dict) and "in_vcs" in presence:
                presence["in_vcs"] = presence.get("in_vcs", 0) + 1
            regression = incident["status"] == "RESOLVED"
            if regression:
                self._history(incident_id)
                self._reopen(incident)
                incident["regression"] = True
                log = self.activity[incident_id]
                self._activity_entry(log, incident_id, self.now(), "UNRESOLVE", None, None, None)
            if _announce:
                self._announce("new_occurrence", incident_id, occurrence=occurrence)
                if regression:
                    self._announce("incident_regression", incident_id)
            return _clone(occurrence)

    def new_incident(
        self,
        *,
        filepath: str | None = "config/settings.py",
        author_email: str = "someone@corp.example",
        author_name: str = "Someone",
        source_id: int | None = None,
        **fields: Any,
    ) -> dict:
        """A new TRIGGERED incident with one occurrence; `fields` override incident fields."""
        with self.lock:
            template = next(iter(self.incidents.values()), None)
            incident_id = self._next("incident")
            secret_id = self._next("secret")
            detector = _clone(template["detector"]) if template else {
                "name": "generic_high_entropy_secret",
                "display_name": "Generic High Entropy Secret",
                "nature": "generic", "family": "credentials", "category": "others",
                "detector_group_name": "generic_high_entropy_secret",
                "detector_group_display_name": "Generic High Entropy Secret",
            }
            now = self.now()
            incident = {
                "id": incident_id,
                "detector": detector,
                "date": now,
                "secret_id": secret_id,
                "secret_hash": f"sandbox-hash-{secret_id:08d}",
                "hmsl_hash": f"{secret_id:064x}",
                "occurrences_count": 0,
                "status": "TRIGGERED",
                "triggered_at": now,
                "ignored_at": None,
                "ignorer_id": None,
                "ignorer_api_token_id": None,
                "resolved_at": None,
                "resolver_id": None,
                "resolver_api_token_id": None,
                "secret_revoked": False,
                "validity": "valid",
                "severity": "high",
                "assignee_id": None,
                "assignee_email": None,
                "share_url": None,
                "feedback_list": [],
                "risk_score": 70,
                "severity_rule_id": None,
                "is_vaulted": False,
                "ignore_reason": None,
                "occurrences": None,
                "secret_presence": {
                    "files_requiring_code_fix": 0, "files_pending_merge": 0, "files_fixed": 0,
                    "outside_vcs": 0, "removed_outside_vcs": 0, "in_vcs": 0, "removed_in_vcs": 0,
                },
                "regression": False,
                "gitguardian_url": "https://dashboard.gitguardian.com/workspace/"
                f"{self.workspace_id}/incidents/{incident_id}",
                "tags": [],
                "incident_name": detector.get("display_name", ""),
                "public_exposure": {
                    "source_publicly_visible": False,
                    "public_incident_linked": False,
                    "leaked_outside_perimeter": False,
                },
                "destination_tickets": [],
                "custom_tags": [],
            }
            incident.update(fields)
            self.incidents[incident_id] = incident
            self._incident_ids.append(incident_id)  # the largest id so far: order holds
            self._owned.add(("incident", incident_id))
            self.new_occurrence(incident_id, filepath=filepath, author_email=author_email,
                                author_name=author_name, source_id=source_id, _announce=False)
            self._announce("incident_triggered", incident_id)
            return _clone(self.incidents[incident_id])

    def set_validity(self, incident_id: int, validity: str) -> dict:
        if validity not in VALIDITIES:
            raise ValueError(f"unknown validity {validity!r}")
        with self.lock:
            incident = self._writable(incident_id)
            changed = incident.get("validity") != validity
            incident["validity"] = validity
            if changed:
                self._announce("incident_validity_changed", incident_id)
            return _clone(incident)

    def deactivate_member(self, member_id: int) -> dict:
        """The member leaves the workspace; incidents keep their assignee, as on the platform."""
        with self.lock:
            member = self._writable_member(member_id)
            if member is None:
                raise ApiError(404, NOT_FOUND)
            member["active"] = False
            return _clone(member)


def _member_brief(member: Mapping[str, Any]) -> dict:
    return {k: member.get(k) for k in ("id", "name", "email", "access_level")}


def _has_any_tag(present: list[str], wanted: list[str]) -> bool:
    if "NONE" in wanted and not present:
        return True
    return any(tag in present for tag in wanted)


def _before(stored: str | None, limit: str) -> bool:
    # Stored times all share iso()'s fixed-width format, so text order is time order:
    # comparing text keeps a 100k-incident filter fast.
    return stored is not None and stored < limit


def _after(stored: str | None, limit: str) -> bool:
    return stored is not None and stored >= limit


SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")


def _offset_time(text: str) -> str:
    """A stored time as the activity log's data writes it: `+00:00` instead of `Z`."""
    return text[:-1] + "+00:00" if text.endswith("Z") else text


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
        (iso(triggered), "TRIGGER", {"triggered_at": _offset_time(
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
