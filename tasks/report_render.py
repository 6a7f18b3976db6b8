"""Weekly report outputs: Markdown, one self-contained HTML page with charts, CSV and JSON.

Every value that came from GitGuardian or Git (names, paths, e-mails, detector names, even
severities, which the API may extend) is escaped: `html.escape` in HTML, `md()` in Markdown.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.artifacts import link, safe_url
from tasks.report import OUTLOOK_DAYS, WeeklyReport, headline, partial_week

TITLE = "GitGuardian weekly remediation report"
_MD_SPECIALS = {c: "\\" + c for c in "\\`*_[]|#"}
_MD_SPECIALS.update({"<": "&lt;", ">": "&gt;", "&": "&amp;", "\r": " ", "\n": " "})
_MD_TABLE = str.maketrans(_MD_SPECIALS)
# Pages list the first breaches (worst first within each severity); incidents.csv has them all.
LISTED = 100
LISTED_JSON = 1000
_CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
    return _plain(value).translate(_MD_TABLE)


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


# --------------------------------------------------------------------------------------------
# Charts (matplotlib, Agg backend: no display needed), drawn for a page 1,200 px wide

SEVERITY_COLOURS = {
    "critical": "#7f0000",
    "high": "#d32f2f",
    "medium": "#f57c00",
    "low": "#fbc02d",
    "info": "#1976d2",
    "unknown": "#9e9e9e",
}
OTHER_COLOUR = "#6d4c41"
CHART_SIZE = (12, 4.2)  # inches at CHART_DPI: 1,200 x 420 px
CHART_DPI = 100
CHART_WIDTH_PX = int(CHART_SIZE[0] * CHART_DPI)


def _label(value: Any) -> str:
    # matplotlib reads $...$ as math: a stray dollar from the data must stay a dollar.
    return _plain(value).replace("$", r"\$")


def _colour(severity: Any) -> str:
    return SEVERITY_COLOURS.get(str(severity), OTHER_COLOUR)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=CHART_DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _week_labels(report: WeeklyReport, partial: bool) -> list[str]:
    """'W38' under each week, the year under the first week and under each week 1."""
    labels = []
    for i, text in enumerate(report.trends["week"]):
        year, _, week = str(text).partition("-")
        labels.append(_label(f"{week}\n{year}" if i == 0 or week == "W01" else week))
    if partial and labels:
        labels[-1] = labels[-1].split("\n")[0] + "\n(partial)"
    return labels


def charts(report: WeeklyReport, generated_at: datetime | None = None) -> dict[str, str]:
    """Chart title -> base64 PNG (1,200 px wide, labels at 12-13 pt, severities in colour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {
        "font.size": 13,
        "axes.titlesize": 14,
        "axes.labelsize": 13,
        "xtick.labelsize": 12,
        "ytick.labelsize": 12,
        "legend.fontsize": 12,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    partial = partial_week(report.window, _when(report, generated_at)) is not None
    out: dict[str, str] = {}
    with plt.rc_context(style):
        backlog = {s: v["value"] for s, v in report.kpis["backlog_by_severity"].items()}
        fig, ax = plt.subplots(figsize=CHART_SIZE, layout="constrained")
        bars = ax.bar(
            [_label(s) for s in backlog],
            list(backlog.values()),
            color=[_colour(s) for s in backlog],
        )
        ax.bar_label(bars, padding=3)
        ax.set_ylabel("open incidents")
        ax.set_title("Open incidents at the week's end, by severity")
        out["Backlog by severity"] = _png(fig)

        t = report.trends
        x = list(range(len(t)))
        labels = _week_labels(report, partial)
        fig, ax = plt.subplots(figsize=CHART_SIZE, layout="constrained")
        opened = ax.bar(
            [i - 0.2 for i in x], t["opened"], width=0.4, label="opened", color="#d32f2f"
        )
        closed = ax.bar(
            [i + 0.2 for i in x], t["closed"], width=0.4, label="closed", color="#388e3c"
        )
        if partial and x:
            for bar in (opened[-1], closed[-1]):
                bar.set_hatch("//")
                bar.set_alpha(0.6)
        ax.set_xticks(x, labels)
        ax.set_ylabel("incidents")
        ax.set_title(
            "Opened and closed per week" + (" (the last week is partial)" if partial else "")
        )
        ax.legend(loc="upper left")
        out["Opened vs closed per week"] = _png(fig)

        fig, ax = plt.subplots(figsize=CHART_SIZE, layout="constrained")
        ax.plot(
            x,
            t["time_to_close_median_days"].astype(float),
            marker="o",
            linewidth=2,
            label="median",
            color="#1976d2",
        )
        ax.plot(
            x,
            t["time_to_close_p90_days"].astype(float),
            marker="o",
            linewidth=2,
            label="90th percentile",
            color="#7b1fa2",
        )
        ax.set_xticks(x, labels)
        ax.set_ylabel("days")
        ax.set_ylim(bottom=0)
        ax.set_title("Days from first occurrence to closure, for the week's closures")
        ax.legend(loc="upper left")
        out["Time to close per week"] = _png(fig)

        aging = report.backlog_aging
        fig, ax = plt.subplots(figsize=CHART_SIZE, layout="constrained")
        buckets = [_label(b) for b in aging.columns]
        bottom = [0] * len(buckets)
        for severity in aging.index:
            values = aging.loc[severity].tolist()
            ax.bar(buckets, values, bottom=bottom, label=_label(severity), color=_colour(severity))
            bottom = [b + v for b, v in zip(bottom, values)]
        for i, total in enumerate(bottom):
            ax.annotate(
                f"{total:,}",
                (i, total),
                ha="center",
                va="bottom",
                xytext=(0, 3),
                textcoords="offset points",
            )
        ax.set_ylabel("open incidents")
        ax.set_xlabel("open for")
        ax.set_title("Age of the open incidents at the week's end, by severity")
        ax.legend(title="severity", loc="upper left")
        out["Backlog aging"] = _png(fig)
    return out


# --------------------------------------------------------------------------------------------
# HTML


def _html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{h(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{h(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_laid_out(
    rows: Sequence[Mapping[str, Any]],
    layout: Sequence[tuple[str, str, str]],
    tz: str,
    urls: Mapping[Any, Any] | None = None,
) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{h(t)}</th>" for t, _, _ in layout)
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        for cells in _laid_out(rows, layout, tz, "html", urls)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1216px}
h1{font-size:1.6em;margin:0 0 .2em}h2{margin-top:1.6em}.period{margin:.2em 0 .8em;color:#444}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
th{background:#f3f3f3}.note{background:#fff6d5;padding:.5em;border-left:4px solid #e0b000}
.partial{background:#fff3e0;border:2px solid #ef6c00;color:#8a3b00;padding:.5em .8em;
font-weight:600;margin:.4em 0}
#headline{display:grid;grid-template-columns:repeat(3,1fr);gap:.6em;margin:.6em 0}
.kpi{border:1px solid #ddd;border-radius:6px;padding:.5em .8em;background:#fafafa}
.kpi .label{font-size:.95em;color:#444}.kpi .value{font-size:2em;font-weight:700;line-height:1.2}
.kpi .change{font-size:.95em}.better{color:#1b5e20}.worse{color:#b71c1c}.same{color:#555}
.also{color:#333;margin:.3em 0 0}
figure{margin:0 0 1.2em}img.chart{width:100%;max-width:1200px;height:auto;display:block}
figcaption{color:#555}
a{color:#0b57d0}
"""


def _html_headline(report: WeeklyReport, generated_at: datetime | None) -> list[str]:
    parts = ['<section id="headline">']
    for row in _headline(report, partial_label(report, generated_at) is not None):
        key, verdict = row["key"], row["verdict"] or "same"
        change = _change(row, key)
        against = fmt(key, row["previous"])
        words = f" ({_verdict(row)})" if _verdict(row) and change else ""
        parts.append(
            f'<div class="kpi" data-kpi="{h(key)}"><div class="label">{h(row["label"])}</div>'
            f'<div class="value">{h(fmt(key, row["value"]))}</div>'
            f'<div class="change {h(verdict)}">{h(change) or "&ndash;"} '
            f"vs {h(against)} the week before{h(words)}</div></div>"
        )
    parts.append("</section>")
    return parts


def html_page(
    report: WeeklyReport,
    chart_images: Mapping[str, str] | None = None,
    generated_at: datetime | None = None,
) -> str:
    k = report.kpis
    w = report.window
    tz = w.tz
    images = charts(report, generated_at) if chart_images is None else chart_images
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{h(title(report))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{h(title(report))}</h1>",
        f'<p class="period">Week {h(w.label)}: {h(_period(report))}.</p>',
    ]
    label = partial_label(report, generated_at)
    if label:
        parts.append(f'<p class="partial" id="partial-week">{h(label)}</p>')
    parts += _html_headline(report, generated_at)
    parts.append(
        f'<p class="also">Also: {h(fmt("n", k["held_by_inactive_or_departed"]["value"]))} open '
        "incident(s) held by inactive or departed members; automated closures "
        f"{h(fmt('automated_closure_share', k['automated_closure_share']['value']))} of the "
        "week's closures. Every KPI is in the table at the end.</p>"
    )
    parts += [f'<p class="note">{h(n)}</p>' for n in report.notes]

    outlook = _outlook(report)
    parts.append(f'<h2 id="about-to-breach">About to breach SLA (next {OUTLOOK_DAYS} days)</h2>')
    if outlook is None:
        parts.append("<p><em>Not computed for this report.</em></p>")
    else:
        parts.append(
            f"<p>{len(outlook):,} open incident(s) reach their SLA in the next "
            f"{OUTLOOK_DAYS} days{', soonest first' if len(outlook) else ''}.</p>"
        )
        if len(outlook):
            parts.append(_html_laid_out(_records(outlook.head(LISTED)), _OUTLOOK_COLUMNS, tz))
            parts += [
                f"<p><em>{h(line)}</em></p>"
                for line in _more(len(outlook), "one", "incidents.csv")
                if line
            ]
    parts.append("<h2>Charts</h2>")
    for name, png in images.items():
        parts.append(
            f'<figure><img class="chart" width="{CHART_WIDTH_PX}" alt="{h(name)}" '
            f'src="data:image/png;base64,{png}"></figure>'
        )
    parts += [
        "<h2>SLA breaches</h2>",
        f"<p>{len(report.sla_breaches):,} incident(s): open past their SLA "
        f"{h(_breaches_when(report))}, or closed late in it (worst first in each "
        "severity).</p>",
        _html_laid_out(_records(report.sla_breaches.head(LISTED)), _BREACH_COLUMNS, tz),
    ]
    parts += [f"<p><em>{h(line)}</em></p>" for line in _more(len(report.sla_breaches)) if line]
    parts += [
        '<h2 id="sla-escalation">SLA escalation</h2>',
        f"<p>{h(_RUNGS_INTRO)}</p>",
        _html_table(_rungs(report), _RUNG_COLUMNS),
    ]
    sections = [
        (
            "Top detectors of the week",
            k["top_detectors"],
            ["detector", "incidents", "previous", "change"],
        ),
        (
            "Top sources of the week",
            k["top_sources"],
            ["source", "incidents", "previous", "change"],
        ),
        (
            "Open incidents per assignee",
            k["open_per_assignee"],
            ["assignee", "open_incidents", "member_status"],
        ),
        (
            "Held by inactive or departed members",
            _records(report.tables["held_by_inactive_or_departed"]),
            ["assignee", "open_incidents", "member_status"],
        ),
    ]
    for heading, rows, columns in sections:
        parts += [f"<h2>{h(heading)}</h2>", _html_table(rows, columns)]
    exposed = report.tables["publicly_exposed"]
    parts += [
        "<h2>Publicly exposed open incidents</h2>",
        _html_laid_out(
            _records(exposed.head(LISTED)), _EXPOSED_COLUMNS, tz, _incident_urls(report)
        ),
    ]
    more = _more(len(exposed), "one", "incidents.csv (publicly_exposed)")
    parts += [f"<p><em>{h(line)}</em></p>" for line in more if line]
    parts += [
        "<h2>Automation</h2>",
        _html_table(
            k["automation_actions"], ["playbook", "action", "result", "count", "previous", "change"]
        ),
    ]
    parts.append("<h2>Audit log</h2>")
    audit = k.get("audit_log")
    if audit is None:
        parts.append(
            "<p><em>Not available: the API token lacks the audit_logs:read scope.</em></p>"
        )
    else:
        parts.append(_html_table(audit["top_events"], ["event", "incidents", "previous", "change"]))
    parts += ["<h2>Weekly trend</h2>", _html_laid_out(_records(report.trends), _TREND_COLUMNS, tz)]
    parts += [
        '<h2 id="every-kpi">Every KPI</h2>',
        _html_table(_kpi_rows(k), ["KPI", "this week", "previous week", "change"]),
    ]
    parts.append("</body></html>")
    return "\n".join(parts)


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


def write_report(
    report: WeeklyReport, folder: Path | str, *, generated_at: datetime | None = None
) -> dict[str, Path]:
    """Write report.md, report.html, incidents.csv and kpis.json under `folder/<YYYY>-W<WW>/`."""
    generated_at = _when(report, generated_at)
    out = Path(folder) / report.window.label
    out.mkdir(parents=True, exist_ok=True)
    names = ("report.html", "report.md", "incidents.csv", "kpis.json")
    paths = {name: out / name for name in names}
    shown = {name: path.resolve() for name, path in paths.items()}
    files = {
        "report.md": markdown(report, generated_at, shown),
        "report.html": html_page(report, generated_at=generated_at),
        "incidents.csv": incidents_csv(report),
        "kpis.json": kpis_json(report, generated_at),
    }
    for name, text in files.items():
        paths[name].write_text(text, encoding="utf-8")
    return paths
