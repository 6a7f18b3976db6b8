"""The report's headline (six KPIs against the previous week) and its SLA outlook (what
reaches its SLA in the next days). No I/O, no Prefect."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from tasks.report.frames import Window, _rung_of
from tasks.report.kpis import WeeklyReport, measured_at, open_at

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
