"""Command line for every playbook and the weekly report.

`python -m flows.<module> --help` lists the options (a playbook's policy fields become options);
`--dry-run` (the default) prints the plan as a table, `--apply` makes the writes, within
`--max-actions`.

**Errors come first, fast, in one line.** Each flow module hands over to `command_line` (or
flows/report_cli.py's `report_command_line`) before it imports Prefect, so the options, the
policy, the settings and the key (tasks/preflight.py: one request to GitGuardian) are checked in
about a second, before any Prefect flow starts. A problem is one `error: ...` line naming what
to fix (the option and what it accepts, the variable or Secret block), exit 2 for bad input and 1
when something is down, nothing written; `--debug` adds the traceback. A policy value pydantic
refuses is shown as "--option: message" lines, the message listing the accepted values.

**Progress.** While the flow runs, long steps report "n of N" (tasks/progress.py): a bar per
step on a terminal, plain lines otherwise (stderr). On a terminal Prefect's own console shows
warnings and errors only; elsewhere it logs as configured (PREFECT_LOGGING_LEVEL).
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import json
import logging
import sys
import traceback
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tasks import errors, preflight, progress
from tasks.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Command:
    """A playbook's command line, known without importing its flow module (nor Prefect)."""

    module: str  # flows.departed_developers
    flow: str  # the flow function's name in it
    playbook: str  # the flow's name
    policy: str  # "module:Class" of its policy model

    @property
    def prog(self) -> str:
        return f"python -m {self.module}"

    def policy_model(self) -> Any:
        module, _, name = self.policy.partition(":")
        return getattr(importlib.import_module(module), name)

    def description(self) -> str:
        """The first line of the flow function's docstring, read from the source."""
        path = ROOT / (self.module.replace(".", "/") + ".py")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and node.name == self.flow:
                return (ast.get_docstring(node) or "").splitlines()[0]
        return ""

    def load_flow(self) -> Any:
        return getattr(importlib.import_module(self.module), self.flow)


COMMANDS = {c.module: c for c in (
    Command("flows.departed_developers", "departed_developers",
            "departed-developer-reassignment",
            "tasks.decide.departed_developers:DepartedDevelopersPolicy"),
    Command("flows.auto_ignore", "auto_ignore",
            "test-directory-auto-ignore", "tasks.decide.auto_ignore:AutoIgnorePolicy"),
    Command("flows.commit_author_triage", "commit_author_triage", "commit-author-triage",
            "tasks.decide.commit_author_triage:CommitAuthorTriagePolicy"),
    Command("flows.bulk_remediation", "bulk_remediation", "bulk-remediation",
            "tasks.decide.bulk_remediation:BulkRequest"),
    Command("flows.sla_escalation", "sla_escalation", "sla-escalation",
            "tasks.decide.sla_escalation:SlaEscalationPolicy"),
)}


# ------------------------------------------------------------------ parsing


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one `error: ...` line (exit 2)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({exc.msg} at character {exc.pos + 1})"
        ) from None


json_value.__name__ = "JSON"


def _add_field(parser: argparse.ArgumentParser, name: str, field: Any) -> None:
    annotation = field.annotation
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
        origin, args = typing.get_origin(annotation), list(typing.get_args(annotation))
    help_text = (field.description or "").replace("%", "%%")
    if field.is_required():
        help_text += " (required)"
    else:
        help_text += f" (default: {field.get_default(call_default_factory=True)!r})"
    if annotation is bool:
        parser.add_argument(
            _option(name),
            dest=name,
            action=argparse.BooleanOptionalAction,
            default=None,
            help=help_text,
        )
    elif origin is typing.Literal:
        parser.add_argument(
            _option(name),
            dest=name,
            choices=list(typing.get_args(annotation)),
            default=None,
            help=help_text,
        )
    elif origin in (list, tuple, set, frozenset, Sequence):
        parser.add_argument(
            _option(name),
            dest=name,
            default=None,
            metavar="A,B,...",
            help=help_text + "; comma-separated",
            type=lambda text: [v.strip() for v in text.split(",") if v.strip()],
        )
    elif annotation in (int, float, str):
        parser.add_argument(_option(name), dest=name, type=annotation, default=None, help=help_text)
    else:
        parser.add_argument(
            _option(name),
            dest=name,
            type=json_value,
            default=None,
            metavar="JSON",
            help=help_text + "; as JSON",
        )


def debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug", action="store_true", help="on an error, also print its traceback"
    )


def build_parser(policy_model: Any, description: str, prog: str) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        dest="dry_run",
        action="store_true",
        default=True,
        help="show the plan, write nothing (the default)",
    )
    mode.add_argument("--apply", dest="dry_run", action="store_false", help="make the writes")
    parser.add_argument(
        "--max-actions",
        type=int,
        default=50,
        help="most writes this run may make; a larger plan is refused before any write "
        "(default: 50)",
    )
    debug_option(parser)
    policy = parser.add_argument_group("policy")
    for name, field in policy_model.model_fields.items():
        _add_field(policy, name, field)
    return parser


def policy_from(policy_model: Any, args: argparse.Namespace) -> Any:
    """The policy the options describe; pydantic's refusal as "--option: message" lines."""
    from pydantic import ValidationError

    given = {
        k: v for k, v in vars(args).items() if k in policy_model.model_fields and v is not None
    }
    try:
        return policy_model(**given)
    except ValidationError as exc:
        options = {name: _option(name) for name in policy_model.model_fields}
        lines = errors.pydantic_lines(exc, options)
        if len(lines) == 1:
            raise InputError(f"invalid policy: {lines[0]}") from exc
        raise InputError("invalid policy:\n" + "\n".join(f"  {line}" for line in lines)) from exc


# ------------------------------------------------------------------ errors and output


def fail(exc: BaseException, *, debug: bool = False, default: int = errors.OUTAGE) -> int:
    """Print one `error: ...` line for `exc` (and its traceback with --debug); the exit code."""
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    known = errors.classify(exc)
    if isinstance(exc, InputError):
        code, text = exc.exit_code, str(exc).strip()  # may hold "field: message" lines
    elif known is not None:
        code, text = known
    else:
        code = default
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if not debug:
            text += " (run again with --debug for the traceback)"
    print(f"error: {text}", file=sys.stderr, flush=True)
    return code


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out=None) -> None:
    out = out or sys.stdout  # read at call time: a default bound at import outlives a redirect
    if not rows:
        print("(nothing)", file=out)
        return
    cells = [[" ".join(str(r.get(c, "")).split())[:80] for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=out)


class _NotProgress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not hasattr(record, "progress")


class _Lines:
    """Progress as plain lines (stderr is not a terminal)."""

    def __init__(self, stream: Any):
        self.stream = stream

    def __call__(self, event: progress.Event) -> None:
        print(f"{datetime.now():%H:%M:%S} {event.text}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class _Bars:
    """Progress as one bar per step (stderr is a terminal)."""

    def __init__(self, stream: Any):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.tasks: dict[int, Any] = {}
        self.started = False

    def __call__(self, event: progress.Event) -> None:
        if not self.started:
            self.bars.start()
            self.started = True
        task = self.tasks.get(event.key)
        if task is None:
            task = self.tasks[event.key] = self.bars.add_task(event.what, total=event.total)
        self.bars.update(
            task,
            completed=event.done,
            total=event.total,
            description=event.text if event.total is None else event.what,
        )
        if event.final:
            self.bars.update(task, total=event.total or event.done or 1, completed=event.done or 1)

    def close(self) -> None:
        if self.started:
            self.bars.stop()


@contextlib.contextmanager
def showing_progress(stream: Any = None) -> Iterator[None]:
    """While a flow runs here: its progress lines on `stream` (stderr), as bars on a terminal
    (Prefect's console then shows warnings and errors only), plain lines otherwise; Prefect's
    console never repeats them."""
    stream = stream or sys.stderr
    consoles = [
        h for h in logging.getLogger().handlers if type(h).__name__ == "PrefectConsoleHandler"
    ]
    tty = bool(getattr(stream, "isatty", lambda: False)())
    render: Any = _Bars(stream) if tty else _Lines(stream)
    quiet = _NotProgress()
    levels = [h.level for h in consoles]
    for handler in consoles:
        handler.addFilter(quiet)
        if tty:
            handler.setLevel(max(handler.level, logging.WARNING))
    try:
        with progress.listen(render):
            yield
    finally:
        render.close()
        for handler, level in zip(consoles, levels):
            handler.removeFilter(quiet)
            handler.setLevel(level)


def run_flow(flow_fn: Any, **parameters: Any) -> Any:
    """Run the flow here, its final state back (no heartbeat thread: a terminal watches a
    command-line run, not a server's zombie detection, and its join costs about 1 s)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), showing_progress():
        return flow_fn(return_state=True, **parameters)


def outcome_of(state: Any) -> Any:
    """The flow's result, or the exception it ended with (a state's data)."""
    if not hasattr(state, "result"):  # a stand-in flow that returned its value
        return state
    return state.result(raise_on_failure=False)


# ------------------------------------------------------------------ the playbooks


def run_playbook(
    load_flow: Callable[[], Any],
    policy_model: Any,
    *,
    playbook: str,
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
) -> int:
    args = build_parser(policy_model, description, prog).parse_args(argv)
    try:
        policy = policy_from(policy_model, args)
        preflight.check_playbook(
            playbook, policy, dry_run=args.dry_run, max_actions=args.max_actions, command_line=True
        )
        flow_fn = load_flow()
    except Exception as exc:  # noqa: BLE001 - each one line, the traceback with --debug
        return fail(exc, debug=args.debug)
    state = run_flow(flow_fn, policy=policy, dry_run=args.dry_run, max_actions=args.max_actions)
    data = outcome_of(state)
    if isinstance(data, BaseException):
        return fail(data, debug=args.debug)
    print(data.get("summary", ""))
    print()
    if args.dry_run:
        print_table(
            data.get("plan", []), ["incident_id", "action", "arguments", "reason", "evidence"]
        )
    else:
        print_table(
            data.get("outcomes", []), ["incident_id", "action", "result", "reason", "detail"]
        )
    return 0 if state.is_completed() else 1


def command_line(module: str, argv: Sequence[str] | None = None) -> int:
    """`python -m <module>`: everything checked before the flow's module (and Prefect) loads."""
    command = COMMANDS[module]
    return run_playbook(
        command.load_flow,
        command.policy_model(),
        playbook=command.playbook,
        prog=command.prog,
        description=command.description(),
        argv=argv,
    )
