"""The weekly report's history: when each incident was closed and reopened. Pure: no I/O.

Two sources, one shape (`History`):
- `from_logs`: the incidents' activity logs (`RESOLVE` / `IGNORE` close an incident,
  `UNRESOLVE` / `REOPEN` reopen it, each dated), for the incidents whose history could change
  the report's figures (`candidates`); the others from their current state.
- `from_state`: today's data only: a closed incident was closed once, at its `resolved_at` /
  `ignored_at`, and never reopened; an open one was never closed. Used when the token may not
  read activity logs, or when the report is told to read none.

A `closures` row is one closure: the incident, when it was closed (`closed_at`), when that
closure ended (`reopened_at`, NaT while it lasts), its kind (RESOLVED or IGNORED), the
resolve's `secret_revoked`, the ignore's `ignore_reason`, the token that made it, and when the
open period it ended began (`opened_at`: the incident's `date` for its first closure, the
reopening for a later one), from which its time to close is counted.

Times: an event at `t` has happened at any `T > t`; an incident is open at `T` when its `date`
is before `T` (or unknown) and no closure holds at `T` (closed before `T`, not reopened before).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from clients.models import CLOSED_STATUSES

CLOSING = {"RESOLVE": "RESOLVED", "IGNORE": "IGNORED"}
REOPENING = ("UNRESOLVE", "REOPEN")
CLOSURE_COLUMNS = ["incident_id", "closed_at", "reopened_at", "kind", "secret_revoked",
                   "ignore_reason", "api_token_id", "opened_at"]

METHOD_LOGS = "activity_logs"
METHOD_STATE = "current_state"

# The order in which histories are worth reading when the budget cannot cover them all.
TIERS = ("closed in range", "flagged regression", "opened in range", "older open")


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _time(value: Any) -> pd.Timestamp | None:
    """A UTC timestamp, or None (missing or unreadable). `datetime.fromisoformat` first: it reads
    the API's ISO 8601 strings in microseconds, where `pd.to_datetime` on one scalar costs about
    1 ms (the weekly report reads thousands); pandas for anything else."""
    if value is None:
        return None
    if isinstance(value, str) and value[4:5] == "-" and value[7:8] == "-":  # YYYY-MM-DD...
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            pass
    if isinstance(value, datetime):
        stamp = pd.Timestamp(value)
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    stamp = pd.to_datetime(value, utc=True, errors="coerce", format="ISO8601")
    return None if pd.isna(stamp) else stamp


# ---------------------------------------------------------------------------------------------
# Which incidents' histories to read


@dataclass(frozen=True)
class Candidates:
    """The incidents whose activity log is to be read, in order, and what the budget left."""

    ids: list[int]
    by_tier: dict[str, tuple[int, int]]  # tier -> (incidents in it, of which read)
    budget: int

    @property
    def total(self) -> int:
        return sum(n for n, _ in self.by_tier.values())

    @property
    def left_out(self) -> int:
        return self.total - len(self.ids)


def candidates(incidents: Iterable[Any], start: datetime, end: datetime, budget: int) -> Candidates:
    """The incidents whose history can make the report's figures for [start, end) differ from
    today's data, most telling first, at most `budget` of them.

    Today's data is exact for an incident closed before `start` (a reopening since would have
    made it open, or closed later), and for one first seen at or after `end`. Every other one
    may have been closed or reopened in the range: those closed since `start` (their latest
    closure is in or after the range, an earlier one may be too), open ones flagged as a
    regression (reopened by GitGuardian), open ones first seen in the range, then older open
    ones, most recently triggered first (a person may have closed and reopened one: nothing
    but its log tells).
    """
    start_at, end_at = pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")
    tiers: dict[str, list[tuple[Any, int]]] = {tier: [] for tier in TIERS}
    for incident in incidents:
        incident_id = _get(incident, "id")
        opened = _time(_get(incident, "date"))
        if incident_id is None or (opened is not None and opened >= end_at):
            continue
        status = _text(_get(incident, "status"))
        if status in CLOSED_STATUSES:
            closed = _time(_get(incident, "resolved_at" if status == "RESOLVED" else "ignored_at"))
            if closed is None or closed >= start_at:  # an unknown closing date: the log tells
                tiers["closed in range"].append((-(closed or end_at).value, incident_id))
            continue
        tags = {_text(t) for t in (_get(incident, "tags") or ())}
        if _get(incident, "regression") or "REGRESSION" in tags:
            tiers["flagged regression"].append((-(opened or end_at).value, incident_id))
        elif opened is not None and opened >= start_at:
            tiers["opened in range"].append((-opened.value, incident_id))
        else:
            triggered = _time(_get(incident, "triggered_at")) or opened
            tiers["older open"].append((-(triggered.value if triggered is not None else 0),
                                        incident_id))
    budget = max(int(budget), 0)
    chosen: list[int] = []
    by_tier: dict[str, tuple[int, int]] = {}
    for tier in TIERS:
        ranked = [incident_id for _, incident_id in sorted(tiers[tier])]
        taken = ranked[:max(budget - len(chosen), 0)]
        chosen += taken
        by_tier[tier] = (len(ranked), len(taken))
    return Candidates(chosen, by_tier, budget)


# ---------------------------------------------------------------------------------------------
# The history


@dataclass
class History:
    method: str  # METHOD_LOGS or METHOD_STATE
    closures: pd.DataFrame  # CLOSURE_COLUMNS
    reopens: pd.DataFrame | None  # incident_id, at; None: not known (today's data)
    note: str = ""
    summary: dict[str, Any] = field(default_factory=dict)

    def closed_ids_at(self, at: pd.Timestamp) -> Any:
        """Ids of the incidents a closure holds at `at` (an array)."""
        c = self.closures
        holds = (c["closed_at"].isna() | (c["closed_at"] < at)) & (
            c["reopened_at"].isna() | (c["reopened_at"] >= at))
        return c.loc[holds, "incident_id"].to_numpy()

    def reopened_in(self, start: pd.Timestamp, end: pd.Timestamp) -> int | None:
        """Incidents reopened in [start, end), each once; None when not known."""
        if self.reopens is None:
            return None
        at = self.reopens["at"]
        return int(self.reopens.loc[(at >= start) & (at < end), "incident_id"].nunique())


def open_at(frame: pd.DataFrame, history: History, at: pd.Timestamp) -> pd.Series:
    """Incidents open at `at`: first seen before it (or undated) and no closure holding."""
    opened = frame["date"].isna() | (frame["date"] < at)
    return opened & ~frame["id"].isin(history.closed_ids_at(at))


def closures_in(frame: pd.DataFrame, history: History, start: pd.Timestamp,
                end: pd.Timestamp) -> pd.DataFrame:
    """Per incident of `frame` (same index), its latest closure in [start, end): the closure's
    columns and `took_days` (from the open period's start); all NaN/None where none."""
    c = history.closures
    inside = c[(c["closed_at"] >= start) & (c["closed_at"] < end)]
    latest = inside.sort_values("closed_at").drop_duplicates("incident_id", keep="last")
    latest = latest.assign(took_days=(latest["closed_at"] - latest["opened_at"])
                           / pd.Timedelta(days=1))
    columns = ["closed_at", "kind", "secret_revoked", "ignore_reason", "api_token_id",
               "took_days"]
    aligned = latest.set_index("incident_id")[columns].reindex(frame["id"].to_numpy())
    aligned.index = frame.index
    return aligned


def _closures_frame(rows: list[list[Any]]) -> pd.DataFrame:
    closures = pd.DataFrame(rows, columns=CLOSURE_COLUMNS)
    for name in ("closed_at", "reopened_at", "opened_at"):
        closures[name] = pd.to_datetime(closures[name], utc=True)
    closures["secret_revoked"] = closures["secret_revoked"].astype(object)
    return closures


def _state_closures(frame: pd.DataFrame) -> pd.DataFrame:
    """One closure per closed incident of `frame`, as today's data shows it (column-wise: a
    report may hold 100k incidents)."""
    closed = frame[frame["is_closed"]].reset_index(drop=True)
    resolved = closed["status"] == "RESOLVED"
    closures = pd.DataFrame({
        "incident_id": closed["id"],
        "closed_at": closed["closed_at"],
        "reopened_at": pd.Series(pd.NaT, index=closed.index, dtype="datetime64[ns, UTC]"),
        "kind": closed["status"],
        "secret_revoked": closed["secret_revoked"].astype(object).where(resolved, None),
        "ignore_reason": closed["ignore_reason"].astype(object).where(~resolved, None),
        "api_token_id": closed["resolver_api_token_id"].where(
            resolved, closed["ignorer_api_token_id"]).astype(object),
        "opened_at": closed["date"],
    }, columns=CLOSURE_COLUMNS)
    for name in ("closed_at", "reopened_at", "opened_at"):
        closures[name] = pd.to_datetime(closures[name], utc=True)
    return closures


def from_state(frame: pd.DataFrame, note: str = "") -> History:
    """Today's data: one closure per closed incident, never reopened; reopenings unknown."""
    return History(METHOD_STATE, _state_closures(frame), None, note, {"method": METHOD_STATE})


def log_closures(incident: Mapping[str, Any], entries: Sequence[Any]
                 ) -> tuple[list[list[Any]], list[pd.Timestamp], bool]:
    """One incident's closures and reopenings from its log, and whether the log ends in the
    state the incident is in now (closed or open). `incident` is its report row."""
    ordered = sorted(entries, key=lambda e: (_time(_get(e, "created_at")), _get(e, "id") or 0))
    rows: list[list[Any]] = []
    reopens: list[pd.Timestamp] = []
    period_start = incident["date"]
    current: list[Any] | None = None
    for entry in ordered:
        content = _get(entry, "content")
        key = _text(_get(content, "content_key")) if content is not None else None
        data = _get(content, "data") if content is not None else None
        data = data if isinstance(data, Mapping) else {}
        at = _time(_get(entry, "created_at"))
        if at is None:
            continue
        if key in CLOSING and current is None:
            kind = CLOSING[key]
            current = [incident["id"], at, pd.NaT, kind,
                       data.get("revoked") if kind == "RESOLVED" else None,
                       data.get("ignore_reason") if kind == "IGNORED" else None,
                       _text(_get(entry, "api_token_id")), period_start]
            rows.append(current)
        elif key in REOPENING and current is not None:
            current[2] = at
            current = None
            period_start = at
            reopens.append(at)
    closed_now = incident["status"] in CLOSED_STATUSES
    consistent = (current is not None) == closed_now and (
        current is None or current[3] == incident["status"])
    if consistent and current is not None:
        # What the log does not say of the closure that lasts, the incident does.
        if current[4] is None and current[3] == "RESOLVED":
            current[4] = incident["secret_revoked"]
        if current[5] is None and current[3] == "IGNORED":
            current[5] = incident["ignore_reason"]
    return rows, reopens, consistent


def from_logs(frame: pd.DataFrame, logs: Mapping[int, Sequence[Any]],
              chosen: Candidates | None = None, *, requests: int | None = None) -> History:
    """Closures and reopenings from the activity logs of the incidents in `logs`; every other
    incident of `frame` from today's data. A log that does not end in the incident's current
    state (closed or open, and how) is not trusted: that incident counts from today's data."""
    rows_by_id = {row["id"]: row for row in frame.to_dict("records")}
    from_log: set[Any] = set()
    disagreeing: list[Any] = []
    rows: list[list[Any]] = []
    reopens: list[tuple[Any, pd.Timestamp]] = []
    for incident_id, entries in logs.items():
        incident = rows_by_id.get(incident_id)
        if incident is None:
            continue
        closures, reopened, consistent = log_closures(incident, entries)
        if not consistent:
            disagreeing.append(incident_id)
            continue
        from_log.add(incident_id)
        rows += closures
        reopens += [(incident_id, at) for at in reopened]
    rest = _state_closures(frame[~frame["id"].isin(list(from_log))])
    logged = _closures_frame(rows)
    closures = pd.concat([logged, rest], ignore_index=True) if len(logged) else rest
    reopen_frame = pd.DataFrame(reopens, columns=["incident_id", "at"])
    reopen_frame["at"] = pd.to_datetime(reopen_frame["at"], utc=True)
    summary: dict[str, Any] = {
        "method": METHOD_LOGS, "logs_read": len(logs), "requests": requests,
        "from_logs": len(from_log), "log_disagrees_with_state": len(disagreeing),
    }
    if chosen is not None:
        summary.update(budget=chosen.budget, candidates=chosen.total, left_out=chosen.left_out,
                       by_tier={t: {"incidents": n, "read": r}
                                for t, (n, r) in chosen.by_tier.items()})
    history = History(METHOD_LOGS, closures, reopen_frame, "", summary)
    history.note = _logs_note(history, chosen, disagreeing)
    return history


def _logs_note(history: History, chosen: Candidates | None, disagreeing: list[Any]) -> str:
    s = history.summary
    requests = f" in {s['requests']} requests" if s.get("requests") is not None else ""
    text = (f"Past backlogs, closures, time to close and reopenings come from the incidents' "
            f"activity logs ({s['logs_read']} read{requests}")
    if chosen is not None and chosen.left_out:
        older_total, older_read = chosen.by_tier["older open"]
        text += (f"; the budget of {chosen.budget} left out {chosen.left_out} of the "
                 f"{chosen.total} incidents whose history could change them, open ones first "
                 f"seen before the range and least recently triggered ({older_read} of "
                 f"{older_total} older open incidents were read): those count as open "
                 f"throughout, as today's data shows")
    elif chosen is not None:
        text += ": every incident whose history could change these figures"
    text += ")."
    if disagreeing:
        text += (f" {len(disagreeing)} incident(s) whose log does not end in their current "
                 f"status count from today's data.")
    return text


def state_note(reason: str) -> str:
    """The report's statement when it falls back to today's data, and why."""
    return (f"Past backlogs, closures and time to close are rebuilt from today's data "
            f"({reason}): an incident closed and reopened since counts as open all along, "
            f"only its latest closure is seen, and reopenings are not counted.")
