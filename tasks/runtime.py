"""Prefect, or plain Python: the few Prefect entry points the playbook flows use, with a plain
mode that a caller enters explicitly.

    from tasks import runtime

    with runtime.plain():
        result = departed_developers.fn(dry_run=True)  # the flow's body, no Prefect

Outside `plain()` (every flow run, deployment, CLI and test) each name here is Prefect's own and
behaves exactly as Prefect's: `task` makes a Prefect task, `get_run_logger` is the run's logger,
the artifact functions create artifacts. Inside `plain()`, in the same thread or context only:
- a task called directly runs its function (arguments wrapped in `quote()` passed unwrapped, as
  Prefect passes them): no task run, no retries (`.submit` and `.map` are Prefect's still);
- `get_run_logger()` is the standard logger `playbooks.plain`;
- artifacts are not created;
- `secrets.secret_value` reads only the environment (no Secret block lookup).
What it is for: measuring what Prefect costs a flow (benchmarks/playbooks.py), by running the
same flow body with and without it.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC
from typing import Any

from prefect import Task
from prefect import get_run_logger as _prefect_run_logger
from prefect.artifacts import create_markdown_artifact as _prefect_markdown_artifact
from prefect.artifacts import create_table_artifact as _prefect_table_artifact
from prefect.utilities.annotations import quote

_PLAIN: ContextVar[bool] = ContextVar("tasks_runtime_plain", default=False)
plain_logger = logging.getLogger("playbooks.plain")


@contextlib.contextmanager
def plain() -> Iterator[None]:
    """Within this block (this thread or context), tasks and flow helpers run without Prefect."""
    token = _PLAIN.set(True)
    try:
        yield
    finally:
        _PLAIN.reset(token)


def is_plain() -> bool:
    return _PLAIN.get()


class PlainableTask(Task):
    """A Prefect task; called directly inside `plain()`, its function runs as plain Python."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not _PLAIN.get():
            return super().__call__(*args, **kwargs)
        args = tuple(_unquoted(a) for a in args)
        return self.fn(*args, **{k: _unquoted(v) for k, v in kwargs.items()})


def task(__fn: Any = None, **options: Any) -> Any:
    """`prefect.task` (`@task` or `@task(name=..., ...)`), making a `PlainableTask`."""
    if __fn is None:
        return lambda fn: PlainableTask(fn=fn, **options)
    return PlainableTask(fn=__fn, **options)


def get_run_logger() -> Any:
    return plain_logger if _PLAIN.get() else _prefect_run_logger()


def create_table_artifact(*args: Any, **kwargs: Any) -> Any:
    return None if _PLAIN.get() else _prefect_table_artifact(*args, **kwargs)


def create_markdown_artifact(*args: Any, **kwargs: Any) -> Any:
    return None if _PLAIN.get() else _prefect_markdown_artifact(*args, **kwargs)


def _unquoted(value: Any) -> Any:
    return value.unquote() if isinstance(value, quote) else value


# -- what a run is, in the runs list --------------------------------------------------------------

# Flow name -> the short label its runs carry in their names.
RUN_LABELS = {
    "departed-developer-reassignment": "departed",
    "test-directory-auto-ignore": "auto-ignore",
    "commit-author-triage": "triage",
    "new-incidents": "new incidents",  # flows/new_incidents.py: auto-ignore, then triage
    "bulk-remediation": "bulk",
    "sla-escalation": "sla escalation",
    "weekly-report": "weekly report",
}
DRY_TAG, WRITES_TAG, APPROVED_TAG = "dry-run", "writes", "approved"


def run_name() -> str:
    """A flow run's name from its parameters (Prefect calls this as `flow_run_name` when the run
    starts): `departed · DRY RUN · 2026-12-01 06:00 UTC`, `triage · WRITES · ...`,
    `weekly report · 2026-W48 · ...`. The time is the run's scheduled start, in UTC."""
    from datetime import datetime

    from prefect.runtime import flow_run

    parameters = flow_run.parameters or {}
    name = flow_run.flow_name or ""
    label = RUN_LABELS.get(name, name)
    if name == "weekly-report":
        mode = str(parameters.get("week") or "last complete week")
    else:
        mode = "DRY RUN" if parameters.get("dry_run", True) is not False else "WRITES"
    when = flow_run.scheduled_start_time
    when = (datetime.now(UTC) if when is None else
            datetime.fromtimestamp(when.timestamp(), UTC))
    return f"{label} · {mode} · {when:%Y-%m-%d %H:%M} UTC"


def tag_run(add: tuple[str, ...], drop: tuple[str, ...] = ()) -> None:
    """Give the current flow run tags saying what it does (`dry-run` or `writes`, `approved`),
    dropping those that would contradict them (a deployment's static tag). Best effort: no flow
    run (plain mode, a test calling the body) or an unreachable API leaves the tags as they are."""
    if _PLAIN.get():
        return
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.id
    if not run_id:
        return
    try:
        with get_client(sync_client=True) as client:
            current = client.read_flow_run(run_id).tags or []
            tags = [t for t in current if t not in drop and t not in add] + list(add)
            if tags != current:
                client.update_flow_run(run_id, tags=tags)
    except Exception as exc:  # noqa: BLE001 - a missing tag never stops a run
        logging.getLogger(__name__).warning("could not tag the flow run: %s", type(exc).__name__)
