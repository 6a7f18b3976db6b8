"""What happens in the workspace without the API: new incidents and occurrences, validity
changes and departures (the tests' and benchmarks' events), and snapshots of the state.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.api import NOT_FOUND, VALIDITIES, ApiError, clone
from sandbox.state import State, reopen_fields


class Events(State):
    """Changes the platform makes itself, and the state saved and restored."""

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of what can change, keyed by int ids: for tests and `--state-file`."""
        with self.lock:
            return {
                "incidents": {k: clone(v) for k, v in self.incidents.items()},
                "occurrences": {k: clone(v) for k, v in self.occurrences_by_incident.items()},
                "notes": {k: clone(v) for k, v in self.notes.items()},
                "audit_logs": clone(self.audit_logs),
                "shares": {k: clone(v) for k, v in self.shares.items()},
                "activity": {k: clone(v) for k, v in self.activity.items()},
                "access": {k: dict(v) for k, v in self.access.items()},
                "members": {k: clone(v) for k, v in self.members.items()},
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
                "source": clone(source),
            }
            self._index_occurrence(occurrence)
            incident["occurrences_count"] = len(self.occurrences_by_incident[incident_id])
            presence = incident.get("secret_presence")
            if isinstance(presence, dict) and "in_vcs" in presence:
                presence["in_vcs"] = presence.get("in_vcs", 0) + 1
            regression = incident["status"] == "RESOLVED"
            if regression:
                self._history(incident_id)
                reopen_fields(incident)
                incident["regression"] = True
                log = self.activity[incident_id]
                self._activity_entry(log, incident_id, self.now(), "UNRESOLVE", None, None, None)
            if _announce:
                self._announce("new_occurrence", incident_id, occurrence=occurrence)
                if regression:
                    self._announce("incident_regression", incident_id)
            return clone(occurrence)

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
            detector = clone(template["detector"]) if template else {
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
            return clone(self.incidents[incident_id])

    def set_validity(self, incident_id: int, validity: str) -> dict:
        if validity not in VALIDITIES:
            raise ValueError(f"unknown validity {validity!r}")
        with self.lock:
            incident = self._writable(incident_id)
            changed = incident.get("validity") != validity
            incident["validity"] = validity
            if changed:
                self._announce("incident_validity_changed", incident_id)
            return clone(incident)

    def deactivate_member(self, member_id: int) -> dict:
        """The member leaves the workspace; incidents keep their assignee, as on the platform."""
        with self.lock:
            member = self._writable_member(member_id)
            if member is None:
                raise ApiError(404, NOT_FOUND)
            member["active"] = False
            return clone(member)
