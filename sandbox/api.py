"""What every part of the sandbox's store shares: the API's values and messages, errors,
actors, audit-log event names and times.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clients.models import IgnoreReason, Severity, Validity
from sandbox.workspace import Token

# The API's values, from the client's models (one home): the sandbox accepts what they name.
IGNORE_REASONS = tuple(reason.value for reason in IgnoreReason)
VALIDITIES = tuple(validity.value for validity in Validity)
SEVERITIES = tuple(severity.value for severity in Severity)
CONFLICT = "Request conflicts with existing data."
NOT_FOUND = "Not found."
PERMISSION_DENIED = "Permission denied."
INVALID_KEY = "Invalid API key."
DEFAULT_SHARE_LIFESPAN_HOURS = 720  # the workspace default when a share asks for 0
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


def clone(value: Any) -> Any:
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


def offset_time(text: str) -> str:
    """A stored time as the activity log's data writes it: `+00:00` instead of `Z`."""
    return text[:-1] + "+00:00" if text.endswith("Z") else text
