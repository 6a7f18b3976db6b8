"""Weekly report KPIs: pandas in, a KPI dictionary and a few tables out. No I/O, no Prefect.

Definitions (the README repeats them for readers of the report):
- opened at: the incident's `date` (its first occurrence). An incident with no date is never
  counted as opened and has an unknown age.
- closed at: `resolved_at` when the status is RESOLVED, `ignored_at` when IGNORED, else none.
  That is what the data shows: an incident closed, reopened and closed again counts once, in
  the week of its latest closure; an open incident never counts as closed, whatever stale
  closing date it keeps.
- open at time T: opened before T (or with no date) and no closure holding at T (closed
  before T and not reopened before T). Closures and reopenings come from a `History`
  (tasks/report_history.py): the incidents' activity logs where they were read, else today's
  data (closed once, at the dates above, never reopened).
- closed in a week: incidents with a closure in the week, each once, by its latest closure
  there; its time to close runs from the start of the open period it ended (`date`, or the
  reopening before it).
- age at T: whole days from the opened date to T (0-7, 8-30, 31-90, over 90 days).
- measured at: the states of a week (backlog, its ages, open past SLA) are taken at the week's
  end, or at `now` when the week is not over yet (a partial week): never in the future.
- a week runs Monday 00:00 to the next Monday 00:00 in the report's time zone (ISO weeks), so
  a week across a DST change lasts 167 or 169 hours.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from tasks import report_history
from tasks.report_history import History, _get, _text

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info", "unknown")
AGE_BUCKETS = ("0-7 days", "8-30 days", "31-90 days", "over 90 days", "unknown")
# The SLA per severity: one definition, shared with the SLA escalation ladder (tasks/sla.py).
from tasks.sla import DEFAULT_SLA_DAYS  # noqa: E402

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
# definition, in tasks/report_history.py (which this module imports, not the other way round).


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


# ---------------------------------------------------------------------------------------------
# KPIs


@dataclass
class WeeklyReport:
    window: Window
    kpis: dict[str, Any]
    notes: list[str]
    trends: pd.DataFrame  # one row per week: opened, closed, backlog, time to close
    sla_breaches: pd.DataFrame
    automation: pd.DataFrame
    backlog_aging: pd.DataFrame  # severity x age bucket
    incidents: pd.DataFrame  # the incidents the week touched (opened, closed, or open at its end)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)  # how closures were known (method, ...)
    # When the week's states (backlog, ages, open past SLA) were measured: its end, or `now` in
    # a partial week.
    measured_at: pd.Timestamp | None = None
    # The SLA ladder's last rung done per incident (incident id -> rung) by `measured_at`.
    escalation: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))


def measured_at(window: Window, now: datetime | pd.Timestamp | None = None) -> pd.Timestamp:
    """When a week's states are measured: its end, or `now` if that comes first."""
    if now is None:
        return window.end
    at = pd.Timestamp(now)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    return min(window.end, at)


def _in(series: pd.Series, window: Window) -> pd.Series:
    return (series >= window.start) & (series < window.end)


def open_at(frame: pd.DataFrame, at: pd.Timestamp, history: History | None = None) -> pd.Series:
    """Incidents open at `at`: opened before (or undated) and not closed before it (with a
    `history`: no closure of it holding at `at`)."""
    if history is not None:
        return report_history.open_at(frame, history, at)
    opened = frame["date"].isna() | (frame["date"] < at)
    closed_before = frame["is_closed"] & (frame["closed_at"].isna() | (frame["closed_at"] < at))
    return opened & ~closed_before


def age_days(frame: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    """Whole days since opened (NaN when undated)."""
    return np.floor((at - frame["date"]) / pd.Timedelta(days=1))


def age_bucket(days: pd.Series) -> pd.Series:
    buckets = pd.cut(days, bins=[-math.inf, 7, 30, 90, math.inf], labels=list(AGE_BUCKETS[:4]))
    return buckets.astype(object).where(days.notna(), "unknown")


def _quantile(values: pd.Series, q: float) -> float | None:
    values = values.dropna()
    return None if values.empty else round(float(values.quantile(q)), 3)


def _ordered_severities(values: Iterable[str]) -> list[str]:
    present = set(values)
    known = [
        s for s in SEVERITY_ORDER if s in present or s in ("critical", "high", "medium", "low")
    ]
    return known + sorted(present - set(SEVERITY_ORDER))


def _triple(current: Any, previous: Any) -> dict[str, Any]:
    change = None
    if isinstance(current, (int, float)) and isinstance(previous, (int, float)):
        change = round(current - previous, 3)
    return {"value": current, "previous": previous, "change": change}


def _sla_breaches(
    frame: pd.DataFrame,
    window: Window,
    sla_days: Mapping[str, int | None],
    history: History | None = None,
    at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Open at `at` (default the week's end) for longer than the SLA, or closed in the week
    after it (`history` None: closures from today's data alone)."""
    at = window.end if at is None else at
    if history is None:
        history = report_history.from_state(frame)
    columns = [
        "id",
        "severity",
        "kind",
        "days",
        "sla_days",
        "incident_name",
        "detector",
        "assignee_email",
        "gitguardian_url",
    ]
    limit = (
        frame["severity"].map({k: v for k, v in sla_days.items() if v is not None}).astype(float)
    )
    has_sla = limit.notna()
    open_days = (at - frame["date"]) / pd.Timedelta(days=1)
    overdue = has_sla & open_at(frame, at, history) & frame["date"].notna() & (open_days > limit)
    took_days = report_history.closures_in(frame, history, window.start, window.end)["took_days"]
    late = has_sla & took_days.notna() & (took_days > limit)
    parts = []
    for mask, kind, days in (
        (overdue, "open past SLA", open_days),
        (late, "closed late", took_days),
    ):
        part = frame[mask].assign(
            kind=kind, days=days[mask].round(1), sla_days=limit[mask].astype(int)
        )
        parts.append(part)
    breaches = (
        pd.concat(parts)
        if any(len(p) for p in parts)
        else frame.iloc[0:0].assign(kind=None, days=None, sla_days=None)
    )
    return (
        breaches[columns]
        .sort_values(["severity", "days"], ascending=[True, False])
        .reset_index(drop=True)
    )


def _week_scalars(
    frame: pd.DataFrame,
    window: Window,
    sla_days: Mapping[str, int | None],
    token_id: str | None,
    severities: list[str],
    history: History,
    at: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """The week's scalar KPIs (computed again for the previous week to show the change); its
    states (backlog, ages, open past SLA) at `at`, default the week's end."""
    at = window.end if at is None else at
    opened = _in(frame["date"], window)
    closures = report_history.closures_in(frame, history, window.start, window.end)
    closed = closures["closed_at"].notna()
    resolved = closed & (closures["kind"] == "RESOLVED")
    ignored = closed & (closures["kind"] == "IGNORED")
    backlog = frame[open_at(frame, at, history)]
    buckets = age_bucket(age_days(backlog, at))
    took = closures.loc[closed, "took_days"].astype(float)
    took_severity = frame.loc[closed, "severity"]
    breaches = _sla_breaches(frame, window, sla_days, history, at)
    ours = pd.Series(False, index=frame.index)
    if token_id:
        ours = closed & (closures["api_token_id"] == token_id)
    n_closed = int(closed.sum())
    revoked = closures["secret_revoked"] == True  # noqa: E712 - None and NaN are "not known"
    return {
        "opened": int(opened.sum()),
        "closed": n_closed,
        "resolved": int(resolved.sum()),
        "resolved_revoked": int((resolved & revoked).sum()),
        "resolved_not_revoked": int((resolved & ~revoked).sum()),
        "ignored": int(ignored.sum()),
        "ignored_by_reason": closures.loc[ignored, "ignore_reason"]
        .fillna("(none)")
        .value_counts()
        .to_dict(),
        "reopened": history.reopened_in(window.start, window.end),
        "backlog": len(backlog),
        "backlog_by_severity": {s: int((backlog["severity"] == s).sum()) for s in severities},
        "backlog_by_age": {b: int((buckets == b).sum()) for b in AGE_BUCKETS},
        "backlog_by_validity": backlog["validity"].value_counts().to_dict(),
        "time_to_close_median_days": _quantile(took, 0.5),
        "time_to_close_p90_days": _quantile(took, 0.9),
        "time_to_close_by_severity": {
            s: {
                "median_days": _quantile(took[took_severity == s], 0.5),
                "p90_days": _quantile(took[took_severity == s], 0.9),
            }
            for s in severities
        },
        "sla_breaches": len(breaches),
        "sla_breaches_by_severity": {
            s: int((breaches["severity"] == s).sum())
            for s in severities
            if sla_days.get(s) is not None
        },
        "publicly_exposed_open": int(backlog["publicly_exposed"].sum()),
        "automated_closures": int(ours.sum()),
        "automated_closure_share": round(int(ours.sum()) / n_closed, 3) if n_closed else None,
    }


def _nested_triples(current: Any, previous: Any) -> Any:
    if isinstance(current, dict) or isinstance(previous, dict):
        current, previous = current or {}, previous or {}
        keys = list(current) + [k for k in previous if k not in current]
        return {
            k: _nested_triples(
                current.get(k, 0 if _counts(previous) else None),
                previous.get(k, 0 if _counts(current) else None),
            )
            for k in keys
        }
    return _triple(current, previous)


def _counts(mapping: Any) -> bool:
    """A mapping of plain counts (a missing key then means zero, not unknown)."""
    return isinstance(mapping, dict) and all(isinstance(v, int) for v in mapping.values())


def _top(series: pd.Series, previous: pd.Series, label: str) -> list[dict[str, Any]]:
    now, before = series.value_counts(), previous.value_counts()
    order = sorted(now.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_N]
    return [
        {
            label: name,
            "incidents": int(n),
            "previous": int(before.get(name, 0)),
            "change": int(n) - int(before.get(name, 0)),
        }
        for name, n in order
    ]


def _top_sources(
    occurrences: pd.DataFrame | None, frame: pd.DataFrame, window: Window
) -> list[dict[str, Any]]:
    if occurrences is None or occurrences.empty:
        return []

    def sources_of(w: Window) -> pd.Series:
        opened_ids = set(frame.loc[_in(frame["date"], w), "id"])
        rows = occurrences[occurrences["incident_id"].isin(opened_ids)]
        return rows.drop_duplicates(["incident_id", "source"])["source"]

    return _top(sources_of(window), sources_of(window.previous()), "source")


def _assignees(
    frame: pd.DataFrame, members: pd.DataFrame, window: Window, history: History | None = None
) -> pd.DataFrame:
    """Open incidents at the week's end per assignee, flagging inactive and departed members.

    Matched on the member id, else on the normalised e-mail; an assignee found neither way is
    no longer a member of the workspace: "departed".
    """
    backlog = frame.loc[open_at(frame, window.end, history), ["assignee_id", "assignee_email"]]
    backlog = backlog[backlog["assignee_id"].notna() | backlog["assignee_email"].notna()]
    keys = pd.DataFrame(
        {
            "assignee_id": backlog["assignee_id"].fillna(-1),
            "email": backlog["assignee_email"].fillna("").astype(str),
        }
    )
    counts = (
        keys.groupby(["assignee_id", "email"], sort=False)
        .size()
        .rename("open_incidents")
        .reset_index()
    )
    member_status = members["active"].map(lambda a: "inactive" if a is False else "active")
    by_id = dict(zip(members["id"], member_status))
    by_email = dict(zip(members["email"].astype(str).str.strip().str.casefold(), member_status))
    status = counts["assignee_id"].map(by_id).astype(object)
    status = status.fillna(counts["email"].str.strip().str.casefold().map(by_email)).fillna(
        "departed"
    )
    assignee = counts["email"].where(
        counts["email"] != "", "member " + counts["assignee_id"].astype("int64").astype(str)
    )
    table = pd.DataFrame(
        {
            "assignee": assignee,
            "open_incidents": counts["open_incidents"].astype(int),
            "member_status": status,
        }
    )
    return table.sort_values(["open_incidents", "assignee"], ascending=[False, True]).reset_index(
        drop=True
    )


def _automation(ledger: pd.DataFrame | None, window: Window) -> pd.DataFrame:
    columns = ["playbook", "action", "result", "count", "previous", "change"]
    if ledger is None or ledger.empty:
        return pd.DataFrame(columns=columns)
    keys = ["playbook", "action", "result"]
    now = ledger[_in(ledger["at"], window)].groupby(keys).size().rename("count")
    before = ledger[_in(ledger["at"], window.previous())].groupby(keys).size().rename("previous")
    table = pd.concat([now, before], axis=1).fillna(0).astype(int).reset_index()
    table["change"] = table["count"] - table["previous"]
    return table[columns].sort_values(keys).reset_index(drop=True)


def _audit(
    audit: pd.DataFrame | None, window: Window, token_id: str | None
) -> dict[str, Any] | None:
    if audit is None:
        return None
    now = audit[_in(audit["date"], window)]
    before = audit[_in(audit["date"], window.previous())]
    return {
        "events": _triple(len(now), len(before)),
        "events_by_our_token": _triple(
            int((now["api_token_id"] == token_id).sum()) if token_id else 0,
            int((before["api_token_id"] == token_id).sum()) if token_id else 0,
        ),
        "by_action_type": _nested_triples(
            now["action_type"].fillna("(none)").value_counts().to_dict(),
            before["action_type"].fillna("(none)").value_counts().to_dict(),
        ),
        "top_events": _top(
            now["event_name"].fillna("(none)"), before["event_name"].fillna("(none)"), "event"
        ),
    }


def trends(
    frame: pd.DataFrame, window: Window, weeks: int, history: History | None = None
) -> pd.DataFrame:
    history = history if history is not None else report_history.from_state(frame)
    rows = []
    for w in trend_windows(window, weeks):
        closures = report_history.closures_in(frame, history, w.start, w.end)
        took = closures["took_days"].dropna().astype(float)
        rows.append(
            {
                "week": w.label,
                "opened": int(_in(frame["date"], w).sum()),
                "closed": len(took),
                "reopened": history.reopened_in(w.start, w.end),
                "backlog": int(open_at(frame, w.end, history).sum()),
                "time_to_close_median_days": _quantile(took, 0.5),
                "time_to_close_p90_days": _quantile(took, 0.9),
            }
        )
    return pd.DataFrame(rows)


def compute(
    incidents: pd.DataFrame,
    window: Window,
    *,
    members: pd.DataFrame | None = None,
    occurrences: pd.DataFrame | None = None,
    audit: pd.DataFrame | None = None,
    ledger: pd.DataFrame | None = None,
    sla_days: Mapping[str, int | None] | None = None,
    trend_weeks: int = 12,
    token_id: str | None = None,
    notes: Iterable[str] = (),
    history: History | None = None,
    now: datetime | pd.Timestamp | None = None,
    escalations: pd.DataFrame | None = None,
) -> WeeklyReport:
    """Every KPI of the week, each with the previous week's value and the change.

    `audit` None means "not available" (the token lacks audit_logs:read); `ledger` None or empty
    means no automation was recorded. `history` None: closures from today's data alone. `now`
    (the time the report is made): in a week not over yet, the backlog, its ages and the
    incidents open past SLA are measured then instead of at the week's end. `escalations`
    (`escalation_frame`): the SLA ladder's rungs; each breach gets its incident's last rung done
    by then (column `escalation`), and `tables["escalation_rungs"]` counts the open incidents
    per rung.
    """
    if history is None:
        history = report_history.from_state(incidents)
    sla = dict(DEFAULT_SLA_DAYS if sla_days is None else sla_days)
    members = members if members is not None else members_frame([])
    severities = _ordered_severities(incidents["severity"].unique())
    previous = window.previous()
    at = measured_at(window, now)
    current = _week_scalars(incidents, window, sla, token_id, severities, history, at)
    before = _week_scalars(
        incidents, previous, sla, token_id, severities, history, measured_at(previous, now)
    )
    kpis: dict[str, Any] = {k: _nested_triples(current[k], before[k]) for k in current}

    opened_now = incidents.loc[_in(incidents["date"], window), "detector"]
    opened_before = incidents.loc[_in(incidents["date"], previous), "detector"]
    kpis["top_detectors"] = _top(opened_now, opened_before, "detector")
    kpis["top_sources"] = _top_sources(occurrences, incidents, window)

    assignees = _assignees(incidents, members, window, history)
    held = assignees[assignees["member_status"] != "active"]
    held_before = _assignees(incidents, members, previous, history)
    held_before = held_before[held_before["member_status"] != "active"]
    kpis["open_per_assignee"] = assignees.head(TOP_N).to_dict("records")
    kpis["held_by_inactive_or_departed"] = _triple(
        int(held["open_incidents"].sum()), int(held_before["open_incidents"].sum())
    )

    automation = _automation(ledger, window)
    kpis["automation_actions"] = automation.to_dict("records")
    notes = list(notes)
    if history.note:
        notes.append(history.note)
    if ledger is None or ledger.empty:
        notes.append("No automation recorded: the ledger holds no playbook action for these weeks.")
    kpis["audit_log"] = _audit(audit, window, token_id)

    backlog = incidents[open_at(incidents, at, history)]
    aging = pd.crosstab(backlog["severity"], age_bucket(age_days(backlog, at)))
    aging = aging.reindex(index=severities, columns=list(AGE_BUCKETS), fill_value=0)
    aging = aging.loc[:, (aging.sum() > 0) | (aging.columns != "unknown")]

    rungs = last_rungs(escalations, at)
    breaches = _sla_breaches(incidents, window, sla, history, at)
    breaches["escalation"] = _rung_of(breaches["id"], rungs)

    closed_in_week = report_history.closures_in(incidents, history, window.start, window.end)
    touched = (
        _in(incidents["date"], window)
        | closed_in_week["closed_at"].notna()
        | open_at(incidents, at, history)
    )
    return WeeklyReport(
        window=window,
        kpis=kpis,
        notes=notes,
        trends=trends(incidents, window, trend_weeks, history),
        sla_breaches=breaches,
        automation=automation,
        backlog_aging=aging,
        incidents=incidents[touched].sort_values("id").reset_index(drop=True),
        tables={
            "assignees": assignees,
            "held_by_inactive_or_departed": held.reset_index(drop=True),
            "publicly_exposed": backlog.loc[backlog["publicly_exposed"].astype(bool)][
                ["id", "severity", "incident_name", "detector", "assignee_email"]
            ].reset_index(drop=True),
            "escalation_rungs": rung_counts(backlog["id"], rungs),
        },
        history=dict(history.summary),
        measured_at=at,
        escalation=rungs,
    )


# ---------------------------------------------------------------------------------------------
# The headline and the SLA outlook (what the first screen of the report shows)

# The six KPIs a security lead reads first, and which way is better for each.
HEADLINE = (
    ("backlog", "open at the week's end", "down"),
    ("opened", "opened", "down"),
    ("closed", "closed", "up"),
    ("sla_breaches", "SLA breaches", "down"),
    ("time_to_close_median_days", "median days to close", "down"),
    ("publicly_exposed_open", "publicly exposed, open", "down"),
)
OUTLOOK_DAYS = 7


def headline(weekly: WeeklyReport) -> list[dict[str, Any]]:
    """The six headline KPIs: key, label, value, previous, change, and whether the change is
    `better`, `worse` or `same` (None when either week has no value)."""
    rows = []
    for key, label, good in HEADLINE:
        kpi = weekly.kpis[key]
        change = kpi["change"]
        if change is None:
            verdict = None
        elif change == 0:
            verdict = "same"
        else:
            verdict = "better" if (change > 0) == (good == "up") else "worse"
        rows.append(
            {
                "key": key,
                "label": label,
                "value": kpi["value"],
                "previous": kpi["previous"],
                "change": change,
                "verdict": verdict,
            }
        )
    return rows


def partial_week(window: Window, now: datetime | pd.Timestamp) -> float | None:
    """Days of the week that had passed at `now` when the week was not over yet, else None."""
    at = pd.Timestamp(now)
    at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
    if at >= window.end:
        return None
    return max((at - window.start) / pd.Timedelta(days=1), 0.0)


def about_to_breach(
    frame: pd.DataFrame,
    at: pd.Timestamp,
    sla_days: Mapping[str, int | None],
    within_days: int = OUTLOOK_DAYS,
) -> pd.DataFrame:
    """Incidents open at `at`, within their severity's SLA, whose SLA ends in the next
    `within_days` days: soonest first, with the deadline and the days left."""
    columns = [
        "id",
        "severity",
        "due",
        "days_left",
        "age_days",
        "sla_days",
        "incident_name",
        "detector",
        "assignee_email",
        "gitguardian_url",
    ]
    limits = {k: v for k, v in sla_days.items() if v is not None}
    limit = frame["severity"].map(limits).astype(float)
    due = frame["date"] + pd.to_timedelta(limit, unit="D")
    left = (due - at) / pd.Timedelta(days=1)
    soon = (
        limit.notna()
        & frame["date"].notna()
        & open_at(frame, at)
        & (left > 0)
        & (left <= within_days)
    )
    age = (at - frame["date"]) / pd.Timedelta(days=1)
    found = frame[soon].assign(
        due=due[soon],
        days_left=left[soon].round(1),
        age_days=age[soon].round(1),
        sla_days=limit[soon].astype(int),
    )
    return found[columns].sort_values(["due", "id"]).reset_index(drop=True)


def add_outlook(
    weekly: WeeklyReport,
    frame: pd.DataFrame,
    sla_days: Mapping[str, int | None],
    now: datetime | pd.Timestamp,
    within_days: int = OUTLOOK_DAYS,
) -> WeeklyReport:
    """Adds `tables["about_to_breach"]`: as of the week's end, or `now` in a partial week."""
    at = measured_at(weekly.window, now)
    outlook = about_to_breach(frame, at, sla_days, within_days)
    outlook["escalation"] = _rung_of(outlook["id"], weekly.escalation)
    weekly.tables["about_to_breach"] = outlook
    return weekly
