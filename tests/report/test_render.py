"""Report outputs: hostile values from GitGuardian or Git come out escaped in HTML and Markdown."""
from __future__ import annotations

import base64
import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest

from tasks import weekly_report
from tasks.report import charts, files, frames, html_page, kpis, render
from tasks.report.frames import Window

W43 = Window(2026, 43, "UTC")
SCRIPT = "<script>alert(1)</script>"
PIPE_PATH = "src/a|b\nc.py"


@pytest.fixture(scope="module")
def hostile() -> kpis.WeeklyReport:
    incidents = [
        {"id": 1, "date": "2026-10-20T00:00:00Z", "status": "ASSIGNED", "severity": "critical",
         "detector": {"name": "x", "display_name": f"Det {SCRIPT} | *bold* _it_ `code` [l](u)"},
         "incident_name": f"name\nwith | newline {SCRIPT}", "assignee_id": 5,
         "assignee_email": "evil|<img src=x onerror=alert(2)>@corp.example",
         "tags": ["PUBLICLY_EXPOSED"], "gitguardian_url": "javascript:alert(3)"},
        {"id": 2, "date": "2026-10-21T00:00:00Z", "status": "TRIGGERED", "severity": "<b>sev</b>",
         "detector": {"name": "=cmd|' /C calc'!A0"}, "incident_name": "=1+1"},
        {"id": 3, "date": "2026-10-20T00:00:00Z", "status": "TRIGGERED", "severity": "critical",
         "detector": {"name": "y"}, "tags": ["PUBLICLY_EXPOSED"],
         "gitguardian_url": 'https://dashboard.gitguardian.com/workspace/1/incidents/3?x=(a)|b "c'},
    ]
    occurrences = [{"incident_id": 1, "date": "2026-10-20T00:00:00Z",
                    "source": {"id": 1, "full_name": f"acme/{PIPE_PATH}{SCRIPT}"}}]
    ledger = [{"playbook": f"pb{SCRIPT}", "action": "assign", "result": "applied", "incident_id": 1,
               "at": "2026-10-20T00:00:00Z"}]
    return kpis.compute(
        frames.incidents_frame(incidents),
        W43,
        occurrences=frames.occurrences_frame(occurrences),
        ledger=frames.ledger_frame(ledger),
        trend_weeks=2,
    )


def test_md_escapes_markup_and_line_breaks():
    assert render.md("a|b\nc") == "a\\|b c"
    assert render.md(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert render.md("*x* _y_ `z` [l](u) #") == "\\*x\\* \\_y\\_ \\`z\\` \\[l\\](u) \\#"
    assert render.md(None) == "" and render.md(float("nan")) == ""


LINK_3 = "https://dashboard.gitguardian.com/workspace/1/incidents/3?x=%28a%29%7Cb%20%22c"


def test_incidents_link_to_gitguardian_and_only_over_http(hostile):
    text = render.markdown(hostile)
    assert f"[3]({LINK_3})" in text  # in the SLA breaches and publicly exposed tables
    assert "javascript" not in text and "[1](" not in text  # incident 1's URL is not http(s)
    page = html_page.html_page(hostile, chart_images={})
    assert f'<a href="{LINK_3}" target="_blank" rel="noopener noreferrer">3</a>' in page
    assert "javascript" not in page
    rows = render.breach_rows(hostile)
    assert {r["incident"] for r in rows} == {"1", f"[3]({LINK_3})"}


def test_numbers_read_as_people_expect():
    assert render.fmt("automated_closure_share", 0.25) == "25%"
    assert render.fmt("time_to_close_median_days", 125.114) == "125.1"
    assert render.fmt("backlog", 12345) == "12,345"
    assert render.fmt("backlog", None) == "–"
    assert render.fmt_change("automated_closure_share", 0.05) == "+5 pts"
    assert render.fmt_change("automated_closure_share", 0.0) == "0 pts"
    assert render.fmt_change("time_to_close_p90_days", -87.674) == "-87.7"
    assert render.fmt_change("opened", -5) == "-5"


def _figures(text: str) -> list[str]:
    """Decimal numbers in text, outside links and dates."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text)


def test_kpis_show_percentages_and_days_to_one_decimal():
    incidents = [
        {
            "id": i,
            "date": f"2026-10-{day:02d}T0{i % 7}:17:00Z",
            "status": "RESOLVED",
            "severity": "high",
            "resolved_at": f"2026-10-2{i % 5}T13:00:00Z",
            "resolver_api_token_id": "ours" if i % 3 else None,
        }
        for i, day in enumerate(range(1, 12), start=1)
    ]
    weekly = kpis.compute(frames.incidents_frame(incidents), W43, trend_weeks=2, token_id="ours")
    share = weekly.kpis["automated_closure_share"]["value"]
    assert 0 < share < 1 and len(str(share)) > 4  # a fraction with decimals underneath
    text = render.markdown(weekly)
    page = html_page.html_page(weekly, chart_images={})
    assert f"{share * 100:.0f}%" in text and f"{share * 100:.0f}%" in page
    assert str(share) not in text and str(share) not in page
    for figure in _figures(text) + _figures(page):
        assert len(figure.split(".")[1]) == 1, figure


def test_partial_week_is_labelled_and_a_complete_one_is_not(hostile):
    inside = datetime(2026, 10, 22, 12, tzinfo=UTC)  # Thursday noon: 3.5 days
    after = datetime(2026, 10, 27, tzinfo=UTC)
    label = render.partial_label(hostile, inside)
    assert label.startswith("Partial week: 3.5 of 7 days")
    assert f"**{render.md(label)}**" in render.summary_markdown(hostile, inside)
    page = html_page.html_page(hostile, chart_images={}, generated_at=inside)
    assert '<p class="partial" id="partial-week">Partial week: 3.5 of 7 days' in page
    assert "opened so far" in page and "open now" in page
    assert render.partial_label(hostile, after) is None
    assert "Partial week" not in render.markdown(hostile, after)
    page = html_page.html_page(hostile, chart_images={}, generated_at=after)
    assert "partial-week" not in page and "Partial week" not in page and "so far" not in page
    document = json.loads(files.kpis_json(hostile, inside))
    assert document["partial_week_days"] == 3.5


def test_a_partial_week_says_its_breaches_are_measured_now(hostile):
    inside = datetime(2026, 10, 22, 12, tzinfo=UTC)
    assert render.partial_label(hostile, inside).endswith(
        "backlog ages and SLA breaches are as of then."
    )
    assert "open past their SLA at the week's end" in render.markdown(hostile, inside)
    frame = frames.incidents_frame(
        [{"id": 1, "date": "2026-10-20T00:00:00Z", "status": "TRIGGERED", "severity": "critical"}]
    )
    weekly = kpis.compute(frame, W43, trend_weeks=2, now=inside)
    assert weekly.sla_breaches["days"].tolist() == [2.5]
    said = "open past their SLA as of Thu 22 Oct 12:00 (the week is not over)"
    assert said in render.markdown(weekly, inside)
    assert said in html_page.html_page(weekly, chart_images={}, generated_at=inside)


def test_headline_comes_first_with_arrows(hostile):
    after = datetime(2026, 10, 27, tzinfo=UTC)
    text = render.summary_markdown(hostile, after)
    table = [line for line in text.splitlines() if line.startswith("| **")]
    assert [line.split("|")[1].strip() for line in table] == [
        "**open at the week's end**",
        "**opened**",
        "**closed**",
        "**SLA breaches**",
        "**median days to close**",
        "**publicly exposed, open**",
    ]
    assert "| **opened** | **3** | 0 | ▲ +3 (worse) |" in table
    page = html_page.html_page(hostile, chart_images={}, generated_at=after)
    order = [page.index(f'id="{i}"') for i in ("headline", "about-to-breach", "every-kpi")]
    assert order == sorted(order)


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_has_no_raw_html_and_tables_keep_their_shape(hostile):
    text = render.markdown(hostile)
    assert "<script" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;" in text
    assert "acme/src/a\\|b c.py" in text  # pipe escaped, newline flattened
    # Each table keeps one cell per column on every row: no value split a row or added a cell.
    for block in re.split(r"\n\s*\n", text):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows:
            assert len({_unescaped_pipes(r) for r in rows}) == 1, block


def test_html_escapes_every_value(hostile):
    page = html_page.html_page(hostile, chart_images={})
    assert SCRIPT not in page and "<img src=x" not in page and "<b>sev</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "evil|&lt;img src=x onerror=alert(2)&gt;@corp.example" in page
    assert "&lt;b&gt;sev&lt;/b&gt;" in page
    # The only tags are ours: no <script> at all, and only the elements the template writes.
    tags = set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", page))
    assert tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "p",
        "em",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "figure",
        "img",
        "section",
        "div",
        "a",
    }


def test_csv_keeps_values_and_defuses_formulas(hostile):
    rows = list(csv.DictReader(io.StringIO(files.incidents_csv(hostile))))
    by_id = {r["id"]: r for r in rows}
    assert by_id["1"]["incident_name"] == f"name\nwith | newline {SCRIPT}"  # CSV quotes it whole
    assert by_id["2"]["incident_name"] == "'=1+1"
    assert by_id["2"]["detector"] == "'=cmd|' /C calc'!A0"


def test_kpis_json_is_strict_json(hostile):
    document = json.loads(files.kpis_json(hostile))
    assert document["week"] == "2026-W43" and document["title"].endswith("2026-W43")
    assert document["kpis"]["opened"] == {"value": 3, "previous": 0, "change": 3}
    assert (
        document["kpis"]["time_to_close_median_days"]["value"] is None
    )  # NaN would be invalid JSON


def test_charts_are_png_images(hostile):
    images = charts.charts(hostile)
    assert set(images) == {
        "Backlog by severity",
        "Opened vs closed per week",
        "Time to close per week",
        "Backlog aging",
    }
    for png in images.values():
        assert base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n")


def test_write_report_writes_the_four_files(hostile, tmp_path):
    paths = weekly_report.write_files(hostile, tmp_path)
    assert sorted(p.name for p in paths.values()) == [
        "incidents.csv",
        "kpis.json",
        "report.html",
        "report.md",
    ]
    assert all(p.parent == tmp_path / "2026-W43" and p.stat().st_size > 0 for p in paths.values())
    assert 'src="data:image/png;base64,' in paths["report.html"].read_text()
