"""The weekly report's shared formatting (numbers, dates, tables laid out) and its Markdown: the
summary and the whole report. No I/O, no Prefect. The HTML page, charts, CSV and JSON are its
neighbours in tasks/report/.

Every value that came from GitGuardian or Git (names, paths, e-mails, detector names, even
severities, which the API may extend) is escaped: `html.escape` in HTML, `md()` in Markdown.
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from tasks.artifacts import escape_markdown, link, safe_url
from tasks.report.kpis import WeeklyReport
from tasks.report.outlook import OUTLOOK_DAYS, headline, partial_week

TITLE = "GitGuardian weekly remediation report"
# Pages list the first breaches (worst first within each severity); incidents.csv has them all.
LISTED = 100


def title(report: WeeklyReport) -> str:
    return f"{TITLE} {report.window.label}"


def _plain(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if value is pd.NaT:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    return str(value)


def md(value: Any) -> str:
    """Markdown-safe text for a table cell or a line: no markup, no HTML, no line breaks."""
    return escape_markdown(_plain(value))


def h(value: Any) -> str:
    return html.escape(_plain(value), quote=True)


# --------------------------------------------------------------------------------------------
# Numbers as people read them: counts with separators, days to one decimal, shares in percent


def _is_days(name: str) -> bool:
    return "days" in name


def _is_share(name: str) -> bool:
    return "share" in name


def fmt(name: str, value: Any) -> str:
    """A KPI's value: `1,234`, `3.4` (days), `25%` (a share); empty when unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _plain(value)
    if _is_share(name):
        return f"{value * 100:.0f}%"
    if _is_days(name) or isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def fmt_change(name: str, change: Any) -> str:
    if change is None or (isinstance(change, float) and math.isnan(change)):
        return ""
    if _is_share(name):
        return "0 pts" if round(change * 100) == 0 else f"{change * 100:+.0f} pts"
    if _is_days(name) or isinstance(change, float):
        return "0.0" if round(change, 1) == 0 else f"{change:+,.1f}"
    return "0" if change == 0 else f"{change:+,}"


def _arrow(change: Any) -> str:
    if change is None:
        return ""
    return "▲" if change > 0 else "▼" if change < 0 else "="


def _kpi_name(name: str) -> str:
    return (name.replace("_", " ").replace("time to close median days", "median days to close")
            .replace("time to close p90 days", "90th percentile days to close")
            .replace("share", "share (%)"))


def _change(kpi: Mapping[str, Any], name: str = "") -> str:
    change = kpi.get("change")
    if change is None:
        return ""
    return f"{_arrow(change)} {fmt_change(name, change)}".strip()


def _flat_kpis(kpis: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, {value, previous, change}) for every scalar KPI, nested ones named 'a / b'."""
    rows: list[tuple[str, Mapping[str, Any]]] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping) and set(node) == {"value", "previous", "change"}:
            rows.append((prefix, node))
        elif isinstance(node, Mapping):
            for key, child in node.items():
                walk(f"{prefix} / {key.replace('_', ' ')}" if prefix else str(key), child)

    for name, node in kpis.items():
        if name in ("audit_log",) or isinstance(node, list):
            continue
        walk(_kpi_name(name), node)
    audit = kpis.get("audit_log")
    if audit:
        for key in ("events", "events_by_our_token"):
            rows.append((f"audit log / {key.replace('_', ' ')}", audit[key]))
    return rows


def _kpi_rows(kpis: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"KPI": n, "this week": fmt(n, v["value"]), "previous week": fmt(n, v["previous"]),
             "change": _change(v, n)} for n, v in _flat_kpis(kpis)]


def _when(report: WeeklyReport, generated_at: datetime | None) -> datetime:
    return generated_at or datetime.now(UTC)


def _period(report: WeeklyReport) -> str:
    """'Mon 30 Nov 2026 to Sun 6 Dec 2026 (UTC)': the week's days in its time zone."""
    w = report.window
    first = w.start.tz_convert(w.tz)
    last = (w.end - pd.Timedelta(seconds=1)).tz_convert(w.tz)
    return f"{first:%a %d %b %Y} to {last:%a %d %b %Y} ({w.tz})"


def partial_label(report: WeeklyReport, generated_at: datetime | None = None) -> str | None:
    """The partial week's label, or None for a week that was over when the report was made."""
    elapsed = partial_week(report.window, _when(report, generated_at))
    if elapsed is None:
        return None
    at = pd.Timestamp(_when(report, generated_at)).tz_convert(report.window.tz)
    return (f"Partial week: {elapsed:.1f} of 7 days, data up to {at:%a %d %b %Y %H:%M} "
            f"({report.window.tz}). Changes compare these days with the whole previous week; "
            "backlog ages and SLA breaches are as of then.")


def _breaches_when(report: WeeklyReport) -> str:
    """When "open past SLA" was measured: the week's end, or the time a partial week's report
    was made."""
    at = report.measured_at
    if at is None or at >= report.window.end:
        return "at the week's end"
    return f"as of {at.tz_convert(report.window.tz):%a %d %b %H:%M} (the week is not over)"


def _verdict(row: Mapping[str, Any]) -> str:
    return {"better": "better", "worse": "worse", "same": "no change"}.get(row["verdict"] or "", "")


# What a week's days add up (not a state at its end): a partial week's are not comparable.
_FLOWS = ("opened", "closed")


def _headline(report: WeeklyReport, partial: bool) -> list[dict[str, Any]]:
    """The six headline KPIs; in a partial week the week's flows get no better/worse verdict,
    and the backlog is what is open now."""
    rows = headline(report)
    for row in rows:
        if partial and row["key"] in _FLOWS:
            row["verdict"] = None
            row["label"] += " so far"
        if partial and row["key"] == "backlog":
            row["label"] = "open now"
    return rows


# Incident links: only http(s) URLs, escaped, open in a new tab.


def _md_incident(incident_id: Any, url: Any) -> str:
    return link(incident_id, url)


def _html_incident(incident_id: Any, url: Any) -> str:
    target = safe_url(url)
    if target is None:
        return h(incident_id)
    return f'<a href="{h(target)}" target="_blank" rel="noopener noreferrer">{h(incident_id)}</a>'


def _due(value: Any, tz: str) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{pd.Timestamp(value).tz_convert(tz):%a %d %b %H:%M}"


# Table layouts: (column title, source column, kind); kind "incident" links the id.
_BREACH_COLUMNS = [("incident", "id", "incident"), ("severity", "severity", ""),
                   ("kind", "kind", ""), ("days", "days", "days"), ("SLA days", "sla_days", ""),
                   ("detector", "detector", ""), ("assignee", "assignee_email", ""),
                   ("escalation", "escalation", "")]
_OUTLOOK_COLUMNS = [("incident", "id", "incident"), ("severity", "severity", ""),
                    ("SLA ends", "due", "due"), ("days left", "days_left", "days"),
                    ("open for (days)", "age_days", "days"), ("SLA days", "sla_days", ""),
                    ("detector", "detector", ""), ("assignee", "assignee_email", ""),
                    ("escalation", "escalation", "")]
# The SLA ladder's rungs (flows/sla_escalation.py): open incidents by their last rung done.
_RUNG_COLUMNS = ["rung", "incidents"]
_RUNGS_INTRO = ("Open incidents by the last rung of the SLA escalation ladder done (the "
                "ledger's sla-escalation runs; (none): no rung yet).")
_EXPOSED_COLUMNS = [("incident", "id", "incident"), ("severity", "severity", ""),
                    ("detector", "detector", ""), ("assignee", "assignee_email", "")]
_TREND_COLUMNS = [("week", "week", ""), ("opened", "opened", ""), ("closed", "closed", ""),
                  ("backlog", "backlog", ""),
                  ("median days to close", "time_to_close_median_days", "days"),
                  ("90th percentile days", "time_to_close_p90_days", "days")]


def _cell(row: Mapping[str, Any], source: str, kind: str, tz: str, markup: str,
          urls: Mapping[Any, Any]) -> str:
    value = row.get(source)
    if kind == "incident":
        url = row.get("gitguardian_url") or urls.get(value)
        return _md_incident(value, url) if markup == "md" else _html_incident(value, url)
    if kind == "days":
        shown = fmt("days", value) if value is not None else ""
    elif kind == "due":
        shown = _due(value, tz)
    elif source == "assignee_email" and not value:
        shown = "unassigned"
    else:
        shown = value
    return md(shown) if markup == "md" else h(shown)


def _laid_out(rows: Sequence[Mapping[str, Any]], layout: Sequence[tuple[str, str, str]], tz: str,
              markup: str, urls: Mapping[Any, Any] | None = None) -> list[list[str]]:
    """Rows as cells; an incident id is linked to its `gitguardian_url`, from the row or else
    from `urls` (id -> URL, the report's incidents)."""
    urls = urls or {}
    return [[_cell(r, source, kind, tz, markup, urls) for _, source, kind in layout] for r in rows]


def _incident_urls(report: WeeklyReport) -> dict[Any, Any]:
    frame = report.incidents
    if "gitguardian_url" not in frame.columns:
        return {}
    known = frame[frame["gitguardian_url"].notna()]
    return dict(zip(known["id"], known["gitguardian_url"]))


def breach_rows(report: WeeklyReport) -> list[dict[str, str]]:
    """Every SLA breach as Markdown cells (Prefect's table artifacts render Markdown): the
    incident linked to GitGuardian, values escaped, days to one decimal."""
    tz = report.window.tz
    titles = [t for t, _, _ in _BREACH_COLUMNS]
    return [dict(zip(titles, cells))
            for cells in _laid_out(_records(report.sla_breaches), _BREACH_COLUMNS, tz, "md")]


def _outlook(report: WeeklyReport) -> pd.DataFrame | None:
    return report.tables.get("about_to_breach")


def _rungs(report: WeeklyReport) -> list[dict[str, Any]]:
    table = report.tables.get("escalation_rungs")
    return [] if table is None else _records(table)


# --------------------------------------------------------------------------------------------
# Markdown


def _md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    if not rows:
        return ["_none_", ""]
    lines = ["| " + " | ".join(md(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(md(r.get(c)) for c in columns) + " |" for r in rows]
    return lines + [""]


def _md_laid_out(rows: Sequence[Mapping[str, Any]], layout: Sequence[tuple[str, str, str]],
                 tz: str, urls: Mapping[Any, Any] | None = None) -> list[str]:
    """A table whose cells are already Markdown (links made here, values escaped)."""
    if not rows:
        return ["_none_", ""]
    lines = ["| " + " | ".join(md(t) for t, _, _ in layout) + " |", "|" + "---|" * len(layout)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _laid_out(rows, layout, tz, "md", urls)]
    return lines + [""]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _more(total: int, what: str = "breach",
          where: str = "incidents.csv (column sla_breach)") -> list[str]:
    if total <= LISTED:
        return []
    return [f"{total - LISTED} more: every {what} is in {where}.", ""]


def _md_outlook(report: WeeklyReport, limit: int) -> list[str]:
    outlook = _outlook(report)
    lines = [f"## About to breach SLA (next {OUTLOOK_DAYS} days)", ""]
    if outlook is None:
        return lines + ["_Not computed for this report._", ""]
    lines += [f"{len(outlook):,} open incident(s) reach their SLA in the next {OUTLOOK_DAYS} days"
              + (", soonest first:" if len(outlook) else "."), ""]
    if len(outlook):
        lines += _md_laid_out(_records(outlook.head(limit)), _OUTLOOK_COLUMNS, report.window.tz)
        if len(outlook) > limit:
            lines += [f"{len(outlook) - limit} more in the full report.", ""]
    return lines


def summary_markdown(report: WeeklyReport, generated_at: datetime | None = None,
                     files: Mapping[str, Any] | None = None) -> str:
    """The report's first screen: the partial-week label, the six headline KPIs with their
    change, the notes, and where the files are (the Prefect summary artifact)."""
    w = report.window
    lines = [f"# {md(title(report))}", "", f"Week {md(w.label)}: {md(_period(report))}.", ""]
    label = partial_label(report, generated_at)
    if label:
        lines += [f"> **{md(label)}**", ""]
    lines += ["| KPI | this week | previous week | change |", "|---|---:|---:|---|"]
    for row in _headline(report, label is not None):
        key = row["key"]
        change = _change(row, key)
        verdict = _verdict(row)
        lines.append(f"| **{md(row['label'])}** | **{md(fmt(key, row['value']))}** | "
                     f"{md(fmt(key, row['previous']))} | {md(change)}"
                     f"{md(f' ({verdict})') if verdict and change else ''} |")
    lines.append("")
    k = report.kpis
    lines += [f"Also: {md(fmt('n', k['held_by_inactive_or_departed']['value']))} open incident(s) "
              "held by inactive or departed members; automated closures "
              f"{md(fmt('automated_closure_share', k['automated_closure_share']['value']))} "
              "of the week's closures.", ""]
    for note in report.notes:
        lines += [f"> {md(note)}", ""]
    if files:
        lines += ["Files (on the machine that ran the flow; copy the path into a browser):", ""]
        lines += [f"- `{_code(str(path))}`" for path in files.values()]
        lines.append("")
    return "\n".join(lines)


def _code(text: str) -> str:
    """Text inside a Markdown code span: backticks and line breaks cannot end it."""
    return text.replace("`", "'").replace("\n", " ").replace("\r", " ")


def markdown(report: WeeklyReport, generated_at: datetime | None = None,
             files: Mapping[str, Any] | None = None) -> str:
    k = report.kpis
    tz = report.window.tz
    lines = [summary_markdown(report, generated_at, files)]
    lines += _md_outlook(report, LISTED)
    lines += ["## SLA breaches", "", f"{len(report.sla_breaches):,} incident(s): open past their "
              f"SLA {_breaches_when(report)}, or closed late in it (worst first in each "
              "severity).", ""]
    lines += _md_laid_out(_records(report.sla_breaches.head(LISTED)), _BREACH_COLUMNS, tz)
    lines += _more(len(report.sla_breaches))
    lines += ["## SLA escalation", "", _RUNGS_INTRO, ""]
    lines += _md_table(_rungs(report), _RUNG_COLUMNS)
    lines += ["## Top detectors of the week", ""]
    lines += _md_table(k["top_detectors"], ["detector", "incidents", "previous", "change"])
    lines += ["## Top sources of the week", ""]
    lines += _md_table(k["top_sources"], ["source", "incidents", "previous", "change"])
    lines += ["## Open incidents per assignee", ""]
    lines += _md_table(k["open_per_assignee"], ["assignee", "open_incidents", "member_status"])
    lines += ["## Held by inactive or departed members", ""]
    lines += _md_table(
        _records(report.tables["held_by_inactive_or_departed"]),
        ["assignee", "open_incidents", "member_status"],
    )
    lines += ["## Publicly exposed open incidents", ""]
    exposed = report.tables["publicly_exposed"]
    lines += _md_laid_out(
        _records(exposed.head(LISTED)), _EXPOSED_COLUMNS, tz, _incident_urls(report)
    )
    lines += _more(len(exposed), "one", "incidents.csv (publicly_exposed)")
    lines += ["## Automation", ""]
    lines += _md_table(
        k["automation_actions"], ["playbook", "action", "result", "count", "previous", "change"]
    )
    lines += ["## Audit log", ""]
    audit = k.get("audit_log")
    if audit is None:
        lines += ["_Not available: the API token lacks the audit\\_logs:read scope._", ""]
    else:
        lines += _md_table(audit["top_events"], ["event", "incidents", "previous", "change"])
    lines += ["## Weekly trend", ""]
    lines += _md_laid_out(_records(report.trends), _TREND_COLUMNS, tz)
    lines += ["## Every KPI", ""]
    lines += _md_table(_kpi_rows(k), ["KPI", "this week", "previous week", "change"])
    return "\n".join(lines)


