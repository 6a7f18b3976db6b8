"""The report's fetch passes (against a fake client that records its calls) and its command line."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from flows import weekly_report as flow_module
from tasks import weekly_report as report_tasks

SINCE = datetime(2026, 8, 1, tzinfo=UTC)


def _incident(id, status, resolved_at=None, date=None):
    return SimpleNamespace(id=id, status=status, resolved_at=resolved_at, ignored_at=None,
                           date=date or datetime(2026, 1, 1, tzinfo=UTC))


def _pages(items, size=2):
    def generate():
        for k in range(0, len(items), size):
            pulled.append(k // size)
            yield items[k:k + size]

    pulled: list[int] = []
    return generate(), pulled


def test_closed_listing_stops_at_the_first_page_past_the_range():
    days = [30, 20, 10, 5, -1, -2, -3, -4]  # days after SINCE, in -resolved_at order
    items = [_incident(n, "RESOLVED", SINCE + timedelta(days=d)) for n, d in enumerate(days)]
    pages, pulled = _pages(items)
    kept = list(report_tasks._closed_since(pages, "resolved_at", SINCE))
    assert [i.id for i in kept] == [0, 1, 2, 3]
    assert pulled == [0, 1, 2]  # the fourth page is never requested


def test_closed_listing_reads_everything_once_the_answers_are_out_of_order():
    # Not the asked order (a server that ignored `ordering`): a closure hides at the end.
    days = [30, 10, 20, -1, -2, -3, 5, -4]
    items = [_incident(n, "RESOLVED", SINCE + timedelta(days=d)) for n, d in enumerate(days)]
    pages, pulled = _pages(items)
    kept = list(report_tasks._closed_since(pages, "resolved_at", SINCE))
    assert [i.id for i in kept] == [0, 1, 2, 6]
    assert pulled == [0, 1, 2, 3]


class FakeClient:
    def __init__(self, by_call):
        self.by_call = by_call
        self.calls = []

    def incidents(self, *, per_page, **filters):
        def pages():
            self.calls.append(filters)
            key = filters.get("status", "any")
            yield from self.by_call.get(key, [])

        return SimpleNamespace(pages=pages)


def test_fetch_passes_are_disjoint_filters_and_recheck_status():
    recent = _incident(1, "TRIGGERED", date=SINCE + timedelta(days=3))
    client = FakeClient({
        "any": [[recent]],
        "TRIGGERED": [[_incident(2, "TRIGGERED"), _incident(3, "RESOLVED")]],  # 3: filter ignored
        "ASSIGNED": [[_incident(4, "ASSIGNED"), recent]],  # an edge copy: de-duplicated
        "RESOLVED": [[_incident(5, "RESOLVED", SINCE + timedelta(days=1)),
                      _incident(6, "RESOLVED", SINCE - timedelta(days=1))]],
    })
    found = report_tasks.fetch_report_incidents.fn(client, SINCE)
    assert sorted(i.id for i in found) == [1, 2, 4, 5]
    assert client.calls[0] == {"date_after": SINCE}
    assert client.calls[1]["status"] == "TRIGGERED" and client.calls[1]["date_before"] > SINCE
    assert client.calls[3] == {"status": "RESOLVED", "date_before": SINCE + timedelta(seconds=1),
                               "ordering": "-resolved_at"}
    assert client.calls[4]["ordering"] == "-ignored_at"


def test_sla_option_parsing():
    sla = flow_module._sla_option("critical=2, info=5, low=none")
    assert sla["critical"] == 2 and sla["info"] == 5 and sla["low"] is None and sla["high"] == 7
    assert flow_module._sla_option('{"high": 3}') == {"high": 3}


def test_cli_help_lists_the_parameters():
    done = subprocess.run([sys.executable, "-m", "flows.weekly_report", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=str(_root()))
    assert done.returncode == 0, done.stderr
    for option in ("--week", "--timezone", "--sla-days", "--output-dir", "--trend-weeks",
                   "--history-budget"):
        assert option in done.stdout


def test_cli_passes_options_to_the_flow(monkeypatch, capsys):
    seen = {}

    def fake_flow(**kwargs):
        seen.update(kwargs)
        return {"week": "2026-W43", "files": {"report.html": "/x/report.html"}, "notes": ["n"]}

    monkeypatch.setattr(flow_module, "weekly_report", fake_flow)
    # The checks made before the flow starts (tests/flows/test_cli_errors.py) need a key.
    monkeypatch.setattr("tasks.preflight.check_report", lambda **_: None)
    assert (
        flow_module.main(
            [
                "--week",
                "2026-W43",
                "--timezone",
                "Europe/Paris",
                "--trend-weeks",
                "4",
                "--sla-days",
                "critical=3",
                "--history-budget",
                "0",
            ]
        )
        == 0
    )
    assert seen["week"] == "2026-W43" and seen["timezone_name"] == "Europe/Paris"
    assert seen["trend_weeks"] == 4 and seen["sla_days"]["critical"] == 3
    assert seen["history_budget"] == 0
    assert "/x/report.html" in capsys.readouterr().out


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("week", ["2026-W99", "nonsense"])
def test_cli_rejects_a_bad_week(week):
    with pytest.raises(ValueError):
        flow_module._window(week, "UTC")
