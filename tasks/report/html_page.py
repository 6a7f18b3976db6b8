"""The weekly report as one self-contained HTML page (charts inlined). Every value from
GitGuardian or Git is escaped with `html.escape`. No I/O, no Prefect."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tasks.report.charts import CHART_WIDTH_PX, charts
from tasks.report.kpis import WeeklyReport
from tasks.report.outlook import OUTLOOK_DAYS
from tasks.report.render import (
    _BREACH_COLUMNS,
    _EXPOSED_COLUMNS,
    _OUTLOOK_COLUMNS,
    _RUNG_COLUMNS,
    _RUNGS_INTRO,
    _TREND_COLUMNS,
    LISTED,
    _breaches_when,
    _change,
    _headline,
    _incident_urls,
    _kpi_rows,
    _laid_out,
    _more,
    _outlook,
    _period,
    _records,
    _rungs,
    _verdict,
    fmt,
    h,
    partial_label,
    title,
)

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


