"""The SLA escalation ladder's rungs, stage notes and cycles. Pure.

Part of the SLA escalation playbook (tasks/decide/sla_escalation.py): the rung names and their
order, the tag each stage note carries and how it is read back, the records of rungs done
earlier (from the ledger or our notes) and the escalation cycle they make.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tasks import sla
from tasks.decide.identity import normalise_email

SECURITY = "security"  # the stage-3 recipient: the security lead and the security channel

# Rungs (the Decision's reason, stable): approaching_<percent>, breached, escalated.
BREACHED = "breached"
ESCALATED = "escalated"

# The tag each stage note carries (before the write path's marker): what a later run reads back.
STAGE_TAG = "[gg-remediation sla-escalation stage={rung} cycle={cycle} assignee={assignee}]"
STAGE_TAG_RE = re.compile(
    r"\[gg-remediation sla-escalation stage=(?P<rung>[a-z0-9_]+) cycle=(?P<cycle>\d+) "
    r"assignee=(?P<assignee>[^\]\s]*)\]"
)


def percent(share: float) -> int:
    return int(round(share * 100))


def approaching(share: float) -> str:
    return f"approaching_{percent(share)}"


def stage_of(rung: str) -> int:
    return 3 if rung == ESCALATED else 2 if rung == BREACHED else 1


def rung_order(rung: str) -> float:
    """Rungs compare by this: approaching_50 < approaching_90 < breached < escalated."""
    if rung == ESCALATED:
        return 3.0
    if rung == BREACHED:
        return 2.0
    try:
        return 1.0 + int(rung.rsplit("_", 1)[1]) / 1000
    except (IndexError, ValueError):
        return 1.0


# --- what the decide reads of the API models (clients/models.py); test stand-ins fit too ---


class IncidentView(Protocol):
    id: int
    status: str
    date: datetime | None
    severity: str | None
    assignee_email: str | None
    assignee_id: int | None


@dataclass(frozen=True)
class StageRecord:
    """A rung done earlier: from the ledger (an applied decision) or one of our notes' tags."""

    incident_id: int
    rung: str
    cycle: int
    assignee_after: str  # normalised; "" when the incident was left unassigned
    at: datetime  # the ledger's clock, or GitGuardian's for a note (`source`)
    source: str = "ledger"  # "ledger" or "note"


def record_from_decision(incident_id: int, arguments: Mapping[str, Any],
                         at: datetime) -> StageRecord | None:
    """The rung an applied decision of this playbook did (None: not one of ours)."""
    rung, cycle = arguments.get("sla_stage"), arguments.get("cycle")
    if not isinstance(rung, str) or not isinstance(cycle, int):
        return None
    after = arguments.get("email") or arguments.get("assignee") or ""
    return StageRecord(int(incident_id), rung, cycle, normalise_email(str(after)), at)


def records_from_note(incident_id: int, comment: str, at: datetime) -> list[StageRecord]:
    """The rungs a note's tags say were done (a note of ours holds one)."""
    return [StageRecord(int(incident_id), m["rung"], int(m["cycle"]),
                        normalise_email(m["assignee"]), at, "note")
            for m in STAGE_TAG_RE.finditer(comment or "")]


def describe_timing(opened_at: datetime, now: datetime, days: int) -> str:
    """'3.5 days left of 7' / 'late by 2.1 days (SLA 7 days)'."""
    left = (sla.due_at(opened_at, days) - now) / timedelta(days=1)
    if left >= 0:
        return f"{left:.1f} days left of its {days}-day SLA"
    return f"late by {-left:.1f} days (SLA {days} days)"


def severity_name(value: Any) -> str:
    """A severity (an enum or its text) as text."""
    return str(getattr(value, "value", value) or "unknown")


# --- cycles -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cycle:
    number: int
    done: frozenset[str]
    why: str  # how the cycle was found (shown in the evidence)


def current_cycle(incident: IncidentView, records: Sequence[StageRecord],
                  reopened_at: datetime | None) -> Cycle:
    """The incident's escalation cycle now, and the rungs done in it."""
    if not records:
        return Cycle(1, frozenset(), "")
    latest = max(records, key=lambda r: (r.cycle, r.at, rung_order(r.rung)))
    assignee = normalise_email(incident.assignee_email)
    if assignee != latest.assignee_after:
        before = latest.assignee_after or "nobody"
        return Cycle(latest.cycle + 1, frozenset(),
                     f"cycle {latest.cycle + 1}: reassigned from {before} to "
                     f"{assignee or 'nobody'} since the last rung")
    # A reopening is dated by GitGuardian's clock: compared with our note's date (the same
    # clock) when the note was read, else with the ledger's.
    noted_at = [r.at for r in records if r.cycle == latest.cycle and r.source == "note"]
    since = max(noted_at) if noted_at else latest.at
    if reopened_at is not None and reopened_at > since:
        return Cycle(latest.cycle + 1, frozenset(),
                     f"cycle {latest.cycle + 1}: reopened at {reopened_at:%Y-%m-%d %H:%M} UTC")
    done = frozenset(r.rung for r in records if r.cycle == latest.cycle)
    return Cycle(latest.cycle, done, "")
