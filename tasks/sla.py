"""The SLA per severity: one definition, shared by the weekly report (tasks/report/) and the
SLA escalation ladder (tasks/decide/sla_escalation.py). Pure, no I/O.

An incident's SLA clock starts at its `date` (its first occurrence), as the weekly report
counts it. `DEFAULT_SLA_DAYS[severity]` days later it is *breached*: strictly more time has
passed than the SLA allows (the report's "open past SLA" is the same comparison, in days with
their fractions). A severity mapped to None has no SLA and is never breached.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

DEFAULT_SLA_DAYS: dict[str, int | None] = {
    "critical": 1, "high": 7, "medium": 30, "low": 90, "info": None, "unknown": None,
}
DAY = timedelta(days=1)


def sla_days(severity: str | None, table: Mapping[str, int | None] | None = None) -> int | None:
    """Days allowed for this severity (None: no SLA); an unknown severity has none."""
    table = DEFAULT_SLA_DAYS if table is None else table
    return table.get(str(severity or "unknown"))


def elapsed_fraction(opened_at: datetime, now: datetime, days: int) -> float:
    """How much of a `days`-day SLA has passed at `now` (1.0: the SLA's end; above: breached)."""
    return (now - opened_at) / (days * DAY)


def due_at(opened_at: datetime, days: int) -> datetime:
    """When the SLA ends (breached right after)."""
    return opened_at + days * DAY


def is_breached(opened_at: datetime, now: datetime, days: int | None) -> bool:
    return days is not None and now - opened_at > days * DAY
