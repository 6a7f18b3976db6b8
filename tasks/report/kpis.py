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
  (tasks/report/history.py): the incidents' activity logs where they were read, else today's
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
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from tasks.report import history as report_history
from tasks.report.frames import (
    AGE_BUCKETS,
    SEVERITY_ORDER,
    TOP_N,
    Window,
    _rung_of,
    last_rungs,
    members_frame,
    rung_counts,
    trend_windows,
)
from tasks.report.history import History
from tasks.sla import DEFAULT_SLA_DAYS

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


