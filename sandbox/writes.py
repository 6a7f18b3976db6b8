"""The API's writes: the incident state machine, shares, access, PATCH and notes.

Each write checks its input (400), takes the lock, changes the incident (cloned on its first
change), appends an audit-log entry and an activity-log entry, and announces the change to the
webhook sender.
"""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from clients.models import CLOSED_STATUSES, OPEN_STATUSES
from sandbox.api import (
    CONFLICT,
    DEFAULT_SHARE_LIFESPAN_HOURS,
    EVENT_NAMES,
    IGNORE_REASONS,
    NOT_FOUND,
    PERMISSION_DENIED,
    SEVERITIES,
    USER_ID_OFFSET,
    Actor,
    ApiError,
    Human,
    clone,
    iso,
    offset_time,
    token_id_of,
)
from sandbox.state import State, reopen_fields
from sandbox.workspace import Token


class Writes(State):
    """What an API token (or `Human`, in the dashboard) may change."""

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

    def _answer(self, incident: dict) -> dict:
        answer = clone(incident)
        answer["occurrences"] = None
        return answer

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
            reopen_fields(incident)
            self._audit(actor, EVENT_NAMES["reopen"], "UPDATE", [incident_id])
            self._act(actor, incident_id, "UNRESOLVE" if was == "RESOLVED" else "REOPEN")
            self._announce("incident_reopened", incident_id)
            return self._answer(incident)

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
            self._act(actor, incident_id, "SHARE", {"shared_at": offset_time(self.now())})
            self._announce("incident_shared_publicly", incident_id)
            return clone(share)

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
            self._act(actor, incident_id, "UNSHARE", {"unshared_at": offset_time(self.now())})
            self._announce("incident_unshared_publicly", incident_id)

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
            return clone(note)

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
            return clone(note)

    def delete_note(self, actor: Actor, incident_id: int, note_id: int) -> None:
        with self.lock:
            note = self._note(actor, incident_id, note_id)
            self.notes[incident_id].remove(note)
            del self.note_ids[note_id]
            self._audit(actor, EVENT_NAMES["note_delete"], "DELETE", [note_id],
                        {"incident_id": incident_id})
            self._act(actor, incident_id, "DELETE_NOTE", {"note_id": note_id})


def _member_brief(member: Mapping[str, Any]) -> dict:
    return {k: member.get(k) for k in ("id", "name", "email", "access_level")}
