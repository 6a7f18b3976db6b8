"""Decisions as data: what a playbook means to do, why, and what came of it.

A `decide` function returns a `Plan`; `act` applies it and returns `Outcome`s. Both are plain
frozen dataclasses so they can be compared in tests, stored in the ledger and shown as tables.
No Prefect, no I/O here.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


class Action(str, Enum):
    ASSIGN = "assign"
    UNASSIGN = "unassign"
    RESOLVE = "resolve"
    IGNORE = "ignore"
    REOPEN = "reopen"
    SHARE = "share"
    NOTE = "note"


class Result(str, Enum):
    APPLIED = "applied"  # the write was made
    WOULD_APPLY = "would_apply"  # dry run: nothing written
    ALREADY_DONE = "already_done"  # as decided, and made so by this project (a re-run, a crash)
    STATE_CHANGED = "state_changed"  # someone else changed the incident since the plan: skipped
    OVERWROTE_HUMAN_CHANGE = "overwrote_human_change"  # ours landed over an edit made meanwhile
    RESTORED_HUMAN_CHANGE = "restored_human_change"  # ...and the person's value was put back
    NOT_CLAIMED = "not_claimed"  # this run could not claim the decision (lease lost): not written
    OVER_LIMIT = "over_limit"  # beyond the run's blast-radius limit: not attempted
    FAILED = "failed"  # the write was attempted and failed


RESTORE_HUMAN_CHANGES_HELP = (
    "When a reassignment of ours lands a moment after a person reassigned the incident "
    "themselves (seen in the audit log), put the person's choice back, with a note saying why. "
    "Off: the overwrite is only flagged (overwrote_human_change) for you to review."
)


@dataclass(frozen=True)
class Precondition:
    """What the incident must still look like when the write is made.

    `statuses`: allowed current statuses (empty: any). `assignee_email`: the assignee the plan
    saw (compared normalised), or None to not check it. `before_note`: a NOTE decision reads
    the incident and checks the above before writing (off: a note is written whatever the
    incident's state, as bulk notes are).
    """

    statuses: tuple[str, ...] = ()
    assignee_email: str | None = None
    check_assignee: bool = False
    before_note: bool = False


@dataclass(frozen=True)
class Decision:
    playbook: str
    incident_id: int
    action: Action
    arguments: dict[str, Any]
    reason: str  # a stable code, e.g. "assignee_departed"
    evidence: str  # one or two human sentences, shown in the plan and written in the note
    precondition: Precondition = field(default_factory=Precondition)
    # For people only (plan, outcomes, approval): the e-mail an assign by member id gives the
    # incident to (bulk assigns by id). Not part of the decision's id nor of its equality.
    shown_assignee: str | None = field(default=None, compare=False)

    @property
    def decision_id(self) -> str:
        """Stable across runs: the same playbook deciding the same thing gets the same id.

        It goes into the note's marker, so a re-run recognises its own note.
        """
        key = json.dumps(
            [self.playbook, self.incident_id, self.action.value, self.arguments],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def row(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "action": self.action.value,
            "arguments": json.dumps(self.arguments, sort_keys=True, default=str),
            "reason": self.reason,
            "evidence": self.evidence,
            "decision_id": self.decision_id,
        }


@dataclass(frozen=True)
class Skip:
    """An incident the playbook looked at and chose to leave, with the reason."""

    incident_id: int
    reason: str
    evidence: str = ""

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    playbook: str
    decisions: tuple[Decision, ...] = ()
    skips: tuple[Skip, ...] = ()

    def __len__(self) -> int:
        return len(self.decisions)

    def merged(self, other: Plan) -> Plan:
        return Plan(self.playbook, self.decisions + other.decisions, self.skips + other.skips)


@dataclass(frozen=True)
class Outcome:
    decision: Decision
    result: Result
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.result is Result.FAILED

    def row(self) -> dict[str, Any]:
        return {
            "incident_id": self.decision.incident_id,
            "action": self.decision.action.value,
            "result": self.result.value,
            "reason": self.decision.reason,
            "detail": self.detail,
            "decision_id": self.decision.decision_id,
        }
