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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.report import WeeklyReport

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


def _change(kpi: Mapping[str, Any]) -> str:
    change = kpi.get("change")
    if change is None:
        return ""
    return f"{change:+g}"


def _flat_kpis(kpis: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(name, {value, previous, change}) for every scalar KPI, nested ones named 'a / b'."""
    rows: list[tuple[str, Mapping[str, Any]]] = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping) and set(node) == {"value", "previous", "change"}:
            rows.append((prefix, node))
        elif isinstance(node, Mapping):
            for key, child in node.items():
                walk(f"{prefix} / {key}" if prefix else str(key), child)

    for name, node in kpis.items():
        if name in ("audit_log",) or isinstance(node, list):
            continue
        walk(name.replace("_", " "), node)
    audit = kpis.get("audit_log")
    if audit:
        for key in ("events", "events_by_our_token"):
            rows.append((f"audit log / {key.replace('_', ' ')}", audit[key]))
    return rows


# --------------------------------------------------------------------------------------------
# Markdown


def _md_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    if not rows:
        return ["_none_", ""]
    lines = ["| " + " | ".join(md(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(md(r.get(c)) for c in columns) + " |" for r in rows]
    return lines + [""]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _more(total: int) -> list[str]:
    if total <= LISTED:
        return []
    return [f"{total - LISTED} more: every breach is marked in incidents.csv (column sla_breach).", ""]


def summary_markdown(report: WeeklyReport) -> str:
    """The headline numbers (used as the Prefect markdown artifact and the report's top)."""
    k = report.kpis
    w = report.window
    lines = [
        f"# {md(title(report))}",
        "",
        f"Week {md(w.label)} ({md(w.tz)}): {md(w.start.isoformat())} to {md(w.end.isoformat())} (UTC, end excluded).",
        "",
        "| KPI | this week | previous week | change |",
        "|---|---|---|---|",
    ]
    for name in ("opened", "closed", "resolved", "ignored", "backlog", "time_to_close_median_days",
                 "time_to_close_p90_days", "sla_breaches", "held_by_inactive_or_departed",
                 "publicly_exposed_open", "automated_closures", "automated_closure_share"):
        kpi = k[name]
        lines.append(f"| {md(name.replace('_', ' '))} | {md(kpi['value'])} | {md(kpi['previous'])} | {md(_change(kpi))} |")
    lines.append("")
    for note in report.notes:
        lines.append(f"> {md(note)}")
        lines.append("")
    return "\n".join(lines)


def markdown(report: WeeklyReport) -> str:
    k = report.kpis
    lines = [summary_markdown(report), "## Every KPI", ""]
    lines += _md_table([{"KPI": n, "this week": v["value"], "previous week": v["previous"], "change": _change(v)}
                        for n, v in _flat_kpis(k)], ["KPI", "this week", "previous week", "change"])
    lines += ["## SLA breaches", ""]
    lines += _md_table(_records(report.sla_breaches.head(LISTED)), list(report.sla_breaches.columns))
    lines += _more(len(report.sla_breaches))
    lines += ["## Top detectors of the week", ""]
    lines += _md_table(k["top_detectors"], ["detector", "incidents", "previous", "change"])
    lines += ["## Top sources of the week", ""]
    lines += _md_table(k["top_sources"], ["source", "incidents", "previous", "change"])
    lines += ["## Open incidents per assignee", ""]
    lines += _md_table(k["open_per_assignee"], ["assignee", "open_incidents", "member_status"])
    lines += ["## Held by inactive or departed members", ""]
    lines += _md_table(_records(report.tables["held_by_inactive_or_departed"]), ["assignee", "open_incidents", "member_status"])
    lines += ["## Publicly exposed open incidents", ""]
    lines += _md_table(_records(report.tables["publicly_exposed"]), list(report.tables["publicly_exposed"].columns))
    lines += ["## Automation", ""]
    lines += _md_table(k["automation_actions"], ["playbook", "action", "result", "count", "previous", "change"])
    lines += ["## Audit log", ""]
    audit = k.get("audit_log")
    if audit is None:
        lines += ["_Not available: the API token lacks the audit\\_logs:read scope._", ""]
    else:
        lines += _md_table(audit["top_events"], ["event", "incidents", "previous", "change"])
    lines += ["## Weekly trend", ""]
    lines += _md_table(_records(report.trends), list(report.trends.columns))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Charts (matplotlib, Agg backend: no display needed)


def _label(value: Any) -> str:
    # matplotlib reads $...$ as math: a stray dollar from the data must stay a dollar.
    return _plain(value).replace("$", r"\$")


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def charts(report: WeeklyReport) -> dict[str, str]:
    """Chart title -> base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, str] = {}
    backlog = {s: v["value"] for s, v in report.kpis["backlog_by_severity"].items()}
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    ax.bar([_label(s) for s in backlog], list(backlog.values()), color="#c0392b")
    ax.set_ylabel("open incidents")
    out["Backlog by severity"] = _png(fig)

    t = report.trends
    fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
    x = range(len(t))
    ax.bar([i - 0.2 for i in x], t["opened"], width=0.4, label="opened")
    ax.bar([i + 0.2 for i in x], t["closed"], width=0.4, label="closed")
    ax.set_xticks(list(x), [_label(w) for w in t["week"]], rotation=45, fontsize=7)
    ax.legend()
    out["Opened vs closed per week"] = _png(fig)

    fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
    ax.plot(list(x), t["time_to_close_median_days"].astype(float), marker="o", label="median")
    ax.plot(list(x), t["time_to_close_p90_days"].astype(float), marker="o", label="90th percentile")
    ax.set_xticks(list(x), [_label(w) for w in t["week"]], rotation=45, fontsize=7)
    ax.set_ylabel("days")
    ax.legend()
    out["Time to close per week"] = _png(fig)

    aging = report.backlog_aging
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    bottom = [0] * len(aging.index)
    for bucket in aging.columns:
        values = aging[bucket].tolist()
        ax.bar([_label(s) for s in aging.index], values, bottom=bottom, label=_label(bucket))
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.legend(fontsize=7)
    ax.set_ylabel("open incidents")
    out["Backlog aging"] = _png(fig)
    return out


# --------------------------------------------------------------------------------------------
# HTML


def _html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{h(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{h(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}
th{background:#f3f3f3}.note{background:#fff6d5;padding:.5em;border-left:4px solid #e0b000}
img{max-width:100%}
"""


def html_page(report: WeeklyReport, chart_images: Mapping[str, str] | None = None) -> str:
    k = report.kpis
    w = report.window
    images = charts(report) if chart_images is None else chart_images
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{h(title(report))}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{h(title(report))}</h1>",
        f"<p>Week {h(w.label)} ({h(w.tz)}): {h(w.start.isoformat())} to {h(w.end.isoformat())} (UTC, end excluded).</p>",
    ]
    parts += [f'<p class="note">{h(n)}</p>' for n in report.notes]
    parts.append("<h2>KPIs</h2>")
    parts.append(_html_table([{"KPI": n, "this week": v["value"], "previous week": v["previous"], "change": _change(v)}
                              for n, v in _flat_kpis(k)], ["KPI", "this week", "previous week", "change"]))
    parts.append("<h2>Charts</h2>")
    for name, png in images.items():
        parts.append(f'<figure><img alt="{h(name)}" src="data:image/png;base64,{png}"><figcaption>{h(name)}</figcaption></figure>')
    sections = [
        ("SLA breaches", _records(report.sla_breaches.head(LISTED)), list(report.sla_breaches.columns)),
        ("Top detectors of the week", k["top_detectors"], ["detector", "incidents", "previous", "change"]),
        ("Top sources of the week", k["top_sources"], ["source", "incidents", "previous", "change"]),
        ("Open incidents per assignee", k["open_per_assignee"], ["assignee", "open_incidents", "member_status"]),
        ("Held by inactive or departed members", _records(report.tables["held_by_inactive_or_departed"]),
         ["assignee", "open_incidents", "member_status"]),
        ("Publicly exposed open incidents", _records(report.tables["publicly_exposed"]),
         list(report.tables["publicly_exposed"].columns)),
        ("Automation", k["automation_actions"], ["playbook", "action", "result", "count", "previous", "change"]),
    ]
    for heading, rows, columns in sections:
        parts += [f"<h2>{h(heading)}</h2>", _html_table(rows, columns)]
        if heading == "SLA breaches":
            parts += [f"<p><em>{h(line)}</em></p>" for line in _more(len(report.sla_breaches)) if line]
    parts.append("<h2>Audit log</h2>")
    audit = k.get("audit_log")
    if audit is None:
        parts.append("<p><em>Not available: the API token lacks the audit_logs:read scope.</em></p>")
    else:
        parts.append(_html_table(audit["top_events"], ["event", "incidents", "previous", "change"]))
    parts += ["<h2>Weekly trend</h2>", _html_table(_records(report.trends), list(report.trends.columns))]
    parts.append("</body></html>")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# CSV and JSON


def incidents_csv(report: WeeklyReport) -> str:
    frame = report.incidents.drop(columns=["is_closed"]).copy()
    kinds = dict(zip(report.sla_breaches["id"], report.sla_breaches["kind"]))
    frame["sla_breach"] = frame["id"].map(kinds)
    for column in frame.columns:
        if frame[column].dtype == object or str(frame[column].dtype) in ("str", "string"):
            # A cell starting with = + - @ is a formula to a spreadsheet: keep it text.
            frame[column] = frame[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_CSV_FORMULA_STARTS) else v)
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
        "generated_at": (generated_at or datetime.now(timezone.utc)).isoformat(),
        "notes": report.notes,
        "history": report.history,  # how closures and reopenings were known (method, reads)
        "kpis": report.kpis,
        "trends": _records(report.trends),
        "sla_breaches_total": len(report.sla_breaches),
        "sla_breaches": _records(report.sla_breaches.head(LISTED_JSON)),
    }
    return json.dumps(_clean(document), indent=2, default=_json_default, allow_nan=False)


def write_report(report: WeeklyReport, folder: Path | str, *, generated_at: datetime | None = None) -> dict[str, Path]:
    """Write report.md, report.html, incidents.csv and kpis.json under `folder/<YYYY>-W<WW>/`."""
    out = Path(folder) / report.window.label
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "report.md": markdown(report),
        "report.html": html_page(report),
        "incidents.csv": incidents_csv(report),
        "kpis.json": kpis_json(report, generated_at),
    }
    paths = {}
    for name, text in files.items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths[name] = path
    return paths
