"""The weekly report's inputs: weeks (ISO, in the report's time zone) and pandas frames
built from API objects and ledger rows. No I/O, no Prefect."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from tasks.report.history import _get, _text

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info", "unknown")
AGE_BUCKETS = ("0-7 days", "8-30 days", "31-90 days", "over 90 days", "unknown")
# The SLA per severity: one definition, shared with the SLA escalation ladder (tasks/sla.py).

PUBLIC_TAGS = ("PUBLICLY_EXPOSED", "PUBLICLY_LEAKED")
TOP_N = 10

INCIDENT_COLUMNS = (
    "id", "incident_name", "detector", "severity", "validity", "status", "date", "closed_at",
    "resolved_at", "ignored_at", "secret_revoked", "ignore_reason", "assignee_id",
    "assignee_email", "resolver_api_token_id", "ignorer_api_token_id", "publicly_exposed",
    "occurrences_count", "gitguardian_url",
)


# ---------------------------------------------------------------------------------------------
# Weeks


@dataclass(frozen=True)
class Window:
    """One ISO week in a time zone; `start`/`end` are UTC timestamps, end exclusive."""

    year: int
    week: int
    tz: str = "UTC"

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def start(self) -> pd.Timestamp:
        return _local_midnight(date.fromisocalendar(self.year, self.week, 1), self.tz)

    @property
    def end(self) -> pd.Timestamp:
        return _local_midnight(
            date.fromisocalendar(self.year, self.week, 1) + timedelta(days=7), self.tz
        )

    def shifted(self, weeks: int) -> Window:
        year, week, _ = (
            date.fromisocalendar(self.year, self.week, 1) + timedelta(weeks=weeks)
        ).isocalendar()
        return Window(year, week, self.tz)

    def previous(self) -> Window:
        return self.shifted(-1)


def _local_midnight(day: date, tz: str) -> pd.Timestamp:
    # Midnight always exists in the zones we know of DST changes at 02:00/03:00; zoneinfo
    # picks the first of two on a repeated hour, which is what "start of day" means.
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return pd.Timestamp(local).tz_convert("UTC")


def parse_week(text: str, tz: str = "UTC") -> Window:
    """'2026-W43' (or '2026W43') -> Window."""
    cleaned = text.strip().upper().replace("-W", "W")
    year_text, _, week_text = cleaned.partition("W")
    year, week = int(year_text), int(week_text)
    date.fromisocalendar(year, week, 1)  # raises ValueError for a week the year does not have
    return Window(year, week, tz)


def last_complete_week(now: datetime, tz: str = "UTC") -> Window:
    """The latest ISO week that ended before `now`, in the time zone `tz`."""
    local_today = pd.Timestamp(now).tz_convert(tz).date()
    year, week, _ = (local_today - timedelta(days=7)).isocalendar()
    return Window(year, week, tz)


def trend_windows(window: Window, weeks: int) -> list[Window]:
    """`weeks` weeks ending with `window`, oldest first."""
    return [window.shifted(-k) for k in range(max(weeks, 1) - 1, -1, -1)]


# ---------------------------------------------------------------------------------------------
# Frames from API objects (pydantic models or plain dicts with the API's field names)


# `_get` and `_text` read a field of an API object, pydantic model or plain dict alike: one
# definition, in tasks/report/history.py (which this module imports, not the other way round).


def _is_public(incident: Any) -> bool:
    tags = {_text(t) for t in (_get(incident, "tags") or ())}
    if tags & set(PUBLIC_TAGS):
        return True
    exposure = _get(incident, "public_exposure")
    if exposure is None:
        return False
    # A public repository exposes the secret as much as a leak outside the perimeter does.
    return any(
        bool(_get(exposure, flag))
        for flag in (
            "source_publicly_visible",
            "public_incident_linked",
            "leaked_outside_perimeter",
        )
    )


def _times(values: list[Any]) -> pd.Series:
    return pd.to_datetime(
        pd.Series(values, dtype=object), utc=True, errors="coerce", format="ISO8601"
    )


def incidents_frame(incidents: Iterable[Any]) -> pd.DataFrame:
    """One row per incident (the last copy of an id wins), with `closed_at` derived."""
    rows: dict[Any, list[Any]] = {}
    for incident in incidents:
        detector = _get(incident, "detector")
        detector_name = None
        if detector is not None:
            detector_name = _get(detector, "display_name") or _get(detector, "name")
        severity = _text(_get(incident, "severity")) or "unknown"
        status = _text(_get(incident, "status"))
        rows[_get(incident, "id")] = [
            _get(incident, "id"),
            _get(incident, "incident_name"),
            detector_name,
            severity,
            _text(_get(incident, "validity")) or "unknown",
            status,
            _get(incident, "date"),
            _get(incident, "resolved_at"),
            _get(incident, "ignored_at"),
            _get(incident, "secret_revoked"),
            _text(_get(incident, "ignore_reason")),
            _get(incident, "assignee_id"),
            _get(incident, "assignee_email"),
            _text(_get(incident, "resolver_api_token_id")),
            _text(_get(incident, "ignorer_api_token_id")),
            _is_public(incident),
            _get(incident, "occurrences_count"),
            _get(incident, "gitguardian_url"),
        ]
    columns = [
        "id",
        "incident_name",
        "detector",
        "severity",
        "validity",
        "status",
        "date",
        "resolved_at",
        "ignored_at",
        "secret_revoked",
        "ignore_reason",
        "assignee_id",
        "assignee_email",
        "resolver_api_token_id",
        "ignorer_api_token_id",
        "publicly_exposed",
        "occurrences_count",
        "gitguardian_url",
    ]
    frame = pd.DataFrame(list(rows.values()), columns=columns)
    for name in ("date", "resolved_at", "ignored_at"):
        frame[name] = _times(frame[name].tolist())
    frame["detector"] = frame["detector"].fillna("(unknown detector)")
    frame["publicly_exposed"] = frame["publicly_exposed"].astype(bool)
    resolved = frame["status"] == "RESOLVED"
    ignored = frame["status"] == "IGNORED"
    frame["closed_at"] = frame["resolved_at"].where(resolved, frame["ignored_at"].where(ignored))
    frame["closed_at"] = pd.to_datetime(frame["closed_at"], utc=True)
    frame["is_closed"] = resolved | ignored
    return frame[list(INCIDENT_COLUMNS) + ["is_closed"]]


def members_frame(members: Iterable[Any]) -> pd.DataFrame:
    rows = [(_get(m, "id"), _get(m, "email"), _get(m, "name"), _get(m, "active")) for m in members]
    return pd.DataFrame(rows, columns=["id", "email", "name", "active"])


def occurrences_frame(occurrences: Iterable[Any]) -> pd.DataFrame:
    """incident id, date, source full name: what "top sources" needs, nothing more."""
    rows = []
    for o in occurrences:
        source = _get(o, "source")
        name = (_get(source, "full_name") or _get(source, "url")) if source is not None else None
        rows.append((_get(o, "incident_id"), _get(o, "date"), name or "(unknown source)"))
    frame = pd.DataFrame(rows, columns=["incident_id", "date", "source"])
    frame["date"] = _times(frame["date"].tolist())
    return frame


def audit_frame(logs: Iterable[Any]) -> pd.DataFrame:
    rows = [
        (
            _get(a, "date"),
            _text(_get(a, "event_name")),
            _text(_get(a, "action_type")),
            _text(_get(a, "api_token_id")),
        )
        for a in logs
    ]
    frame = pd.DataFrame(rows, columns=["date", "event_name", "action_type", "api_token_id"])
    frame["date"] = _times(frame["date"].tolist())
    return frame


def ledger_frame(rows: Iterable[Any]) -> pd.DataFrame:
    """Ledger outcomes (playbook, action, result, incident_id, at)."""
    data = [
        (
            _text(_get(r, "playbook")),
            _text(_get(r, "action")),
            _text(_get(r, "result")),
            _get(r, "incident_id"),
            _get(r, "at"),
        )
        for r in rows
    ]
    frame = pd.DataFrame(data, columns=["playbook", "action", "result", "incident_id", "at"])
    frame["at"] = _times(frame["at"].tolist())
    return frame


def escalation_frame(applied: Iterable[Any]) -> pd.DataFrame:
    """The SLA ladder's rungs done: the ledger's applied decisions of `sla-escalation`
    (`Ledger.applied`), one row per rung (incident_id, rung, cycle, at)."""
    from tasks.decide.sla_escalation import record_from_decision

    rows = []
    for a in applied:
        record = record_from_decision(
            _get(a, "incident_id"), _get(a, "arguments") or {}, _get(a, "at")
        )
        if record is not None:
            rows.append((record.incident_id, record.rung, record.cycle, record.at))
    frame = pd.DataFrame(rows, columns=["incident_id", "rung", "cycle", "at"])
    frame["at"] = _times(frame["at"].tolist())
    return frame


def last_rungs(escalations: pd.DataFrame | None, at: pd.Timestamp) -> pd.Series:
    """Each incident's last rung of the SLA ladder done before `at` (incident id -> rung): the
    highest rung of its latest cycle, as the ladder itself reads the ledger."""
    from tasks.decide.sla_escalation import rung_order

    if escalations is None or escalations.empty:
        return pd.Series(dtype=object, name="escalation")
    done = escalations[escalations["at"] < at]
    done = done.assign(order=done["rung"].map(rung_order))
    done = done.sort_values(["incident_id", "cycle", "order", "at"])
    return done.groupby("incident_id")["rung"].last().rename("escalation")


def _rung_of(ids: pd.Series, rungs: pd.Series) -> pd.Series:
    """Each id's last rung, None where none was done."""
    found = ids.map(rungs).astype(object)
    return found.where(found.notna(), None)


def rung_counts(open_ids: Iterable[Any], rungs: pd.Series) -> pd.DataFrame:
    """Open incidents by their last rung done (lowest rung first), and those with none."""
    from tasks.decide.sla_escalation import rung_order

    found = pd.Series(list(open_ids), dtype=object).map(rungs)
    counts = found.dropna().value_counts()
    order = sorted(counts.index, key=lambda r: (rung_order(str(r)), str(r)))
    rows = [{"rung": r, "incidents": int(counts[r])} for r in order]
    rows.append({"rung": "(none)", "incidents": int(found.isna().sum())})
    return pd.DataFrame(rows, columns=["rung", "incidents"])


