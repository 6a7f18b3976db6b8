"""The weekly report's command line (`python -m flows.weekly_report`): its options, checked
before the flow's module (and Prefect) loads, as flows/cli.py does for the playbooks.
"""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from typing import Any

from flows.cli import Parser, debug_option, fail, json_value, outcome_of, run_flow
from tasks import preflight

# The flow it runs, by name: loaded only once the options and settings are checked.
REPORT_FLOW = "flows.weekly_report:weekly_report"
REPORT_DESCRIPTION = (
    "Write the weekly remediation report (Markdown, HTML with charts, CSV, JSON) and artifacts."
)


def sla_option(text: str) -> dict[str, int | None]:
    """'critical=1,high=7,info=none' or a JSON object."""
    if text.strip().startswith("{"):
        value = json_value(text)
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError('give a JSON object, e.g. {"critical": 1}')
        return value
    sla: dict[str, int | None] = {
        "critical": 1,
        "high": 7,
        "medium": 30,
        "low": 90,
        "info": None,
        "unknown": None,
    }
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, days = part.partition("=")
        days = days.strip()
        if days.lower() in ("", "none", "null"):
            sla[name.strip()] = None
            continue
        try:
            sla[name.strip()] = int(days)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{part!r}: give SEVERITY=DAYS (whole days, or none), e.g. critical=1,info=none"
            ) from None
    return sla


sla_option.__name__ = "SEVERITY=DAYS list"


# Activity logs the weekly report reads at most (one request each, mostly).
DEFAULT_HISTORY_BUDGET = 2000


def report_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m flows.weekly_report", description=REPORT_DESCRIPTION)
    parser.add_argument("--week", help="ISO week, e.g. 2026-W43 (default: the last complete week)")
    parser.add_argument(
        "--timezone",
        default="UTC",
        help="the IANA time zone where weeks start, e.g. Europe/Paris (default: UTC)",
    )
    parser.add_argument(
        "--sla-days",
        type=sla_option,
        default=None,
        metavar="SEV=DAYS,...",
        help="days allowed per severity, e.g. "
        "critical=1,high=7,medium=30,low=90,info=none (default: critical "
        "1, high 7, medium 30, low 90, info and unknown none)",
    )
    parser.add_argument(
        "--output-dir", default="reports", help="folder for <YYYY>-W<WW>/ (default: reports)"
    )
    parser.add_argument(
        "--trend-weeks", type=int, default=12, help="weeks the trends show (default: 12)"
    )
    parser.add_argument(
        "--history-budget",
        type=int,
        default=DEFAULT_HISTORY_BUDGET,
        help="most incident activity logs read for past backlogs, closures and "
        f"reopenings (default: {DEFAULT_HISTORY_BUDGET}; 0: today's data "
        "only)",
    )
    debug_option(parser)
    return parser


def report_command_line(
    argv: Sequence[str] | None = None, load_flow: Callable[[], Any] | None = None
) -> int:
    """The weekly report's command line; `load_flow` gives the flow (default: imported after
    the checks)."""
    args = report_parser().parse_args(argv)
    try:
        preflight.check_report(
            week_text=args.week,
            timezone_name=args.timezone,
            sla=args.sla_days,
            trend_weeks=args.trend_weeks,
            output_dir=args.output_dir,
            command_line=True,
        )
        flow_fn = (load_flow or _weekly_report)()
    except Exception as exc:  # noqa: BLE001 - each one line, the traceback with --debug
        return fail(exc, debug=args.debug)
    state = run_flow(
        flow_fn,
        week=args.week,
        timezone_name=args.timezone,
        sla_days=args.sla_days,
        output_dir=args.output_dir,
        trend_weeks=args.trend_weeks,
        history_budget=args.history_budget,
    )
    result = outcome_of(state)
    if isinstance(result, BaseException):
        return fail(result, debug=args.debug)
    print(f"Weekly report {result['week']}: {result['files']['report.html']}")
    for note in result["notes"]:
        print(f"note: {note}")
    return 0


def _weekly_report() -> Any:
    """The flow, loaded by name after the checks (as `Command.load_flow` loads a playbook's): the
    flow module imports this one, never the reverse."""
    module, _, name = REPORT_FLOW.partition(":")
    return getattr(importlib.import_module(module), name)
