"""Command line for every playbook: its policy model's fields become options.

`python -m flows.<module> --help` lists them; `--dry-run` (the default) prints the plan as a table,
`--apply` makes the writes, within `--max-actions`.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_field(parser: argparse.ArgumentParser, name: str, field: Any) -> None:
    annotation = field.annotation
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        annotation, origin, args = args[0], typing.get_origin(args[0]), list(typing.get_args(args[0]))
    help_text = (field.description or "").replace("%", "%%")
    if field.is_required():
        help_text += " (required)"
    else:
        help_text += f" (default: {field.get_default(call_default_factory=True)!r})"
    if annotation is bool:
        parser.add_argument(_option(name), dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
    elif origin is typing.Literal:
        parser.add_argument(_option(name), dest=name, choices=list(typing.get_args(annotation)), default=None, help=help_text)
    elif origin in (list, tuple, set, frozenset, Sequence):
        parser.add_argument(_option(name), dest=name, default=None, metavar="A,B,...", help=help_text + "; comma-separated",
                            type=lambda text: [v.strip() for v in text.split(",") if v.strip()])
    elif annotation in (int, float, str):
        parser.add_argument(_option(name), dest=name, type=annotation, default=None, help=help_text)
    else:
        parser.add_argument(_option(name), dest=name, type=json.loads, default=None, metavar="JSON", help=help_text + "; as JSON")


def build_parser(policy_model: type[BaseModel], description: str, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", dest="dry_run", action="store_true", default=True,
                      help="show the plan, write nothing (the default)")
    mode.add_argument("--apply", dest="dry_run", action="store_false", help="make the writes")
    parser.add_argument("--max-actions", type=int, default=50,
                        help="most writes this run may make; a larger plan is refused before any write (default: 50)")
    policy = parser.add_argument_group("policy")
    for name, field in policy_model.model_fields.items():
        _add_field(policy, name, field)
    return parser


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


def main(
    flow_fn: Callable[..., dict[str, Any]],
    policy_model: type[BaseModel],
    *,
    prog: str,
    description: str,
    argv: Sequence[str] | None = None,
) -> int:
    args = build_parser(policy_model, description, prog).parse_args(argv)
    given = {k: v for k, v in vars(args).items() if k in policy_model.model_fields and v is not None}
    try:
        policy = policy_model(**given)
    except Exception as exc:  # pydantic's message names the bad field
        print(f"error: invalid policy: {exc}", file=sys.stderr)
        return 2
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    # A run from the command line is watched by its terminal, not by a server's zombie
    # detection: no heartbeat thread, whose join costs about 1 s at the end of every run.
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result = flow_fn(policy=policy, dry_run=args.dry_run, max_actions=args.max_actions,
                         return_state=True)
    data = result.result(raise_on_failure=False)
    if isinstance(data, BaseException):
        print(f"error: {data}", file=sys.stderr)
        return 1
    print(data.get("summary", ""))
    print()
    if args.dry_run:
        print_table(data.get("plan", []), ["incident_id", "action", "arguments", "reason", "evidence"])
    else:
        print_table(data.get("outcomes", []), ["incident_id", "action", "result", "reason", "detail"])
    return 0 if result.is_completed() else 1
