"""What the benchmark scripts share: Prefect's environment for a benchmark process, the common
options (--incidents, --seed, --json), the figures file, a sandbox serving a generated
workspace with its export and the adapters pointed at both, and a playbook loaded by name.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def quiet_prefect(logging_level: str | None = None) -> None:
    """Set before Prefect is imported: no telemetry, a throw-away PREFECT_HOME and, given, the
    log level (INFO lines would be measured as work)."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="gg-bench-prefect-"))
    if logging_level:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", logging_level)


def parser(module: str, doc: str, *, incidents: int, seed: int,
           figures: bool = True) -> argparse.ArgumentParser:
    """`python -m <module>` with --incidents and --seed (and --json, `figures`)."""
    found = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.splitlines()[0])
    found.add_argument("--incidents", type=int, default=incidents)
    found.add_argument("--seed", type=int, default=seed)
    if figures:
        found.add_argument("--json", type=Path, help="also write the figures to this file")
    return found


def write_json(path: Path | None, figures: Any) -> None:
    """The figures to the --json file, when one was given."""
    if path:
        path.write_text(json.dumps(figures, indent=1, default=str))


@contextlib.contextmanager
def running_exported(workspace: Any, prefix: str) -> Iterator[tuple[Any, Path]]:
    """(the sandbox serving `workspace`, the folder of its export), the adapters pointed at
    both as the demo points them: offline directory, git mirrors, no limiter."""
    import sandbox
    from flows.demo import _environment
    from sandbox.export import export

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    export(workspace, folder)
    with sandbox.running(workspace=workspace) as box:
        _environment(box, folder)
        yield box, folder


def load_playbook(spec: tuple[str, ...]) -> tuple[str, Any, Any]:
    """(name, flow, default policy) of a `benchmarks.playbooks.PLAYBOOKS` row."""
    name, flow_module, flow_attr, policy_module, policy_attr = spec
    flow_fn = getattr(importlib.import_module(flow_module), flow_attr)
    return name, flow_fn, getattr(importlib.import_module(policy_module), policy_attr)()
