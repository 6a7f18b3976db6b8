"""The weekly report's data files' contents: the incidents as CSV (formula-safe) and the
KPIs as JSON. No I/O (tasks/weekly_report.py writes them), no Prefect."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tasks.report.kpis import WeeklyReport
from tasks.report.outlook import OUTLOOK_DAYS, partial_week
from tasks.report.render import _outlook, _records, _rungs, title

LISTED_JSON = 1000
_CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# --------------------------------------------------------------------------------------------
# CSV and JSON


def incidents_csv(report: WeeklyReport) -> str:
    frame = report.incidents.drop(columns=["is_closed"]).copy()
    kinds = dict(zip(report.sla_breaches["id"], report.sla_breaches["kind"]))
    frame["sla_breach"] = frame["id"].map(kinds)
    frame["escalation"] = frame["id"].map(report.escalation)
    for column in frame.columns:
        if frame[column].dtype == object or str(frame[column].dtype) in ("str", "string"):
            # A cell starting with = + - @ is a formula to a spreadsheet: keep it text.
            frame[column] = frame[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_CSV_FORMULA_STARTS) else v
            )
    return frame.to_csv(index=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def kpis_json(report: WeeklyReport, generated_at: datetime | None = None) -> str:
    w = report.window
    document = {
        "title": title(report),
        "week": w.label,
        "timezone": w.tz,
        "window": {"start": w.start.isoformat(), "end": w.end.isoformat()},
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(),
        "notes": report.notes,
        "history": report.history,  # how closures and reopenings were known (method, reads)
        "kpis": report.kpis,
        "trends": _records(report.trends),
        "sla_breaches_total": len(report.sla_breaches),
        "sla_breaches": _records(report.sla_breaches.head(LISTED_JSON)),
        "partial_week_days": partial_week(w, generated_at or datetime.now(UTC)),
        "escalation_by_rung": {r["rung"]: r["incidents"] for r in _rungs(report)},
    }
    outlook = _outlook(report)
    if outlook is not None:
        document["about_to_breach_days"] = OUTLOOK_DAYS
        document["about_to_breach"] = _records(outlook.head(LISTED_JSON))
    return json.dumps(_clean(document), indent=2, default=_json_default, allow_nan=False)


