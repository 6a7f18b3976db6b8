"""Prefect, or plain Python: the few Prefect entry points the playbook flows use, with a plain
mode that a caller enters explicitly.

    from tasks import runtime

    with runtime.plain():
        result = departed_developer_reassignment.fn(dry_run=True)  # the flow's body, no Prefect

Outside `plain()` (every flow run, deployment, CLI and test) each name here is Prefect's own and
behaves exactly as Prefect's: `task` makes a Prefect task, `get_run_logger` is the run's logger,
the artifact functions create artifacts. Inside `plain()`, in the same thread or context only:
- a task called directly runs its function (arguments wrapped in `quote()` passed unwrapped, as
  Prefect passes them): no task run, no retries (`.submit` and `.map` are Prefect's still);
- `get_run_logger()` is the standard logger `playbooks.plain`;
- artifacts are not created;
- `settings.secret_value` reads only the environment (no Secret block lookup).
What it is for: measuring what Prefect costs a flow (benchmarks/playbooks.py), by running the
same flow body with and without it.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
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
