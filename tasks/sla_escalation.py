"""The SLA escalation ladder's Prefect tasks: our stage notes per incident and the reopenings
in the audit log. The flow is flows/sla_escalation.py; the pure ladder is
tasks/decide/sla_escalation.py.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tasks.decide import sla_escalation as ladder
from tasks.decide.evidence import Evidence
from tasks.fetch import FETCH
from tasks.runtime import task

REOPENED_EVENT = "secret_incident.reopened"


@task(name="fetch-stage-notes", **FETCH)
def fetch_stage_notes(client: Any, incident_ids: Sequence[int]) -> dict[int, Evidence]:
    """Our stage notes' tags, per incident (one filtered listing each); a listing that fails is
    an unknown for that incident only."""
    from tasks.act import error_detail

    found: dict[int, Evidence] = {}
    for incident_id in incident_ids:
        try:
            records = []
            for note in client.notes(incident_id, per_page=100,
                                     search="gg-remediation sla-escalation"):
                at = note.created_at or datetime.now(UTC)
                records += ladder.records_from_note(incident_id, note.comment, at)
            found[incident_id] = Evidence.yes(records)
        except Exception as exc:  # noqa: BLE001 - that incident is skipped, with the reason
            found[incident_id] = ladder.unknown_notes(
                f"The notes of incident {incident_id} could not be read ({error_detail(exc)}).")
    return found


@task(name="fetch-reopenings", **FETCH)
def fetch_reopenings(client: Any, since: datetime | None) -> dict[int, datetime] | None:
    """Each incident's latest reopening since `since` (the audit log); None when unreadable."""
    if since is None:
        return {}
    try:
        latest: dict[int, datetime] = {}
        for page in client.audit_logs(per_page=100, event_name=REOPENED_EVENT,
                                      date_after=since).pages():
            for entry in page:
                if entry.event_name != REOPENED_EVENT:
                    continue
                for target in entry.target_ids or ():
                    if str(target).isdigit():
                        key = int(target)
                        latest[key] = max(latest.get(key, entry.date), entry.date)
        return latest
    except Exception:  # noqa: BLE001 - no audit_logs:read, or the log is down: said in the run
        return None
