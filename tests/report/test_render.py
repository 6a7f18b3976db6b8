"""Report outputs: hostile values from GitGuardian or Git come out escaped in HTML and Markdown."""
from __future__ import annotations

import base64
import csv
import io
import json
import re

import pytest

from tasks import report, report_render
from tasks.report import Window

W43 = Window(2026, 43, "UTC")
SCRIPT = "<script>alert(1)</script>"
PIPE_PATH = "src/a|b\nc.py"


@pytest.fixture(scope="module")
def hostile() -> report.WeeklyReport:
    incidents = [
        {"id": 1, "date": "2026-10-20T00:00:00Z", "status": "ASSIGNED", "severity": "critical",
         "detector": {"name": "x", "display_name": f"Det {SCRIPT} | *bold* _it_ `code` [l](u)"},
         "incident_name": f"name\nwith | newline {SCRIPT}", "assignee_id": 5,
         "assignee_email": "evil|<img src=x onerror=alert(2)>@corp.example",
         "tags": ["PUBLICLY_EXPOSED"]},
        {"id": 2, "date": "2026-10-21T00:00:00Z", "status": "TRIGGERED", "severity": "<b>sev</b>",
         "detector": {"name": "=cmd|' /C calc'!A0"}, "incident_name": "=1+1"},
    ]
    occurrences = [{"incident_id": 1, "date": "2026-10-20T00:00:00Z",
                    "source": {"id": 1, "full_name": f"acme/{PIPE_PATH}{SCRIPT}"}}]
    ledger = [{"playbook": f"pb{SCRIPT}", "action": "assign", "result": "applied", "incident_id": 1,
               "at": "2026-10-20T00:00:00Z"}]
    return report.compute(report.incidents_frame(incidents), W43, occurrences=report.occurrences_frame(occurrences),
                          ledger=report.ledger_frame(ledger), trend_weeks=2)


def test_md_escapes_markup_and_line_breaks():
    assert report_render.md("a|b\nc") == "a\\|b c"
    assert report_render.md(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert report_render.md("*x* _y_ `z` [l](u) #") == "\\*x\\* \\_y\\_ \\`z\\` \\[l\\](u) \\#"
    assert report_render.md(None) == "" and report_render.md(float("nan")) == ""


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_has_no_raw_html_and_tables_keep_their_shape(hostile):
    text = report_render.markdown(hostile)
    assert "<script" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text
    assert "acme/src/a\\|b c.py" in text  # pipe escaped, newline flattened
    # Each table keeps one cell per column on every row: no value split a row or added a cell.
    for block in re.split(r"\n\s*\n", text):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            assert len({_unescaped_pipes(r) for r in rows}) == 1, block


def test_html_escapes_every_value(hostile):
    page = report_render.html_page(hostile, chart_images={})
    assert SCRIPT not in page and "<img src=x" not in page and "<b>sev</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "evil|&lt;img src=x onerror=alert(2)&gt;@corp.example" in page
    assert "&lt;b&gt;sev&lt;/b&gt;" in page
    # The only tags are ours: no <script> at all, and only the elements the template writes.
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page))
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "em", "table",
                    "thead", "tbody", "tr", "th", "td", "figure", "img", "figcaption"}


def test_csv_keeps_values_and_defuses_formulas(hostile):
    rows = list(csv.DictReader(io.StringIO(report_render.incidents_csv(hostile))))
    by_id = {r["id"]: r for r in rows}
    assert by_id["1"]["incident_name"] == f"name\nwith | newline {SCRIPT}"  # CSV quotes it whole
    assert by_id["2"]["incident_name"] == "'=1+1"
    assert by_id["2"]["detector"] == "'=cmd|' /C calc'!A0"


def test_kpis_json_is_strict_json(hostile):
    document = json.loads(report_render.kpis_json(hostile))
    assert document["week"] == "2026-W43" and document["title"].endswith("2026-W43")
    assert document["kpis"]["opened"] == {"value": 2, "previous": 0, "change": 2}
    assert document["kpis"]["time_to_close_median_days"]["value"] is None  # NaN would be invalid JSON


def test_charts_are_png_images(hostile):
    images = report_render.charts(hostile)
    assert set(images) == {"Backlog by severity", "Opened vs closed per week", "Time to close per week",
                           "Backlog aging"}
    for png in images.values():
        assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n")


def test_write_report_writes_the_four_files(hostile, tmp_path):
    paths = report_render.write_report(hostile, tmp_path)
    assert sorted(p.name for p in paths.values()) == ["incidents.csv", "kpis.json", "report.html", "report.md"]
    assert all(p.parent == tmp_path / "2026-W43" and p.stat().st_size > 0 for p in paths.values())
    assert 'src="data:image/png;base64,' in paths["report.html"].read_text()
