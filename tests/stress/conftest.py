"""Shared pieces of the stress tests: the three playbooks by name, a way to run one against a
sandbox of our choosing, and the parts of the final workspace state that must agree.

Every sandbox here is a fresh server over a deep copy of the session workspace (seed 7), so a
clean run and a run under faults start from identical data. The directory (slapd) and the git
export are shared and only read.
"""
from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import harness
from tests.fixtures.world import set_adapters_env

# Writes whose repeat would be a duplicate in the audit log (notes are counted by marker).
WRITE_EVENTS = ("assign", "unassign", "resolve", "ignore", "reopen", "share", "unshare")
# The client's backoff between tries, shortened so ten percent of 5xx costs milliseconds; a
# server's Retry-After (whole seconds) is still honoured for real.
FAST_RETRIES = {"GITGUARDIAN_MAX_RETRIES": "6", "GITGUARDIAN_RETRY_BACKOFF_CAP": "0.02"}


def playbooks() -> dict[str, tuple[Callable[..., Any], Any, str]]:
    """name -> (flow function, policy, ledger playbook name)."""
    from flows.auto_ignore import auto_ignore
    from flows.commit_author_triage import commit_author_triage
    from flows.departed_developers import PLAYBOOK as DEPARTED
    from flows.departed_developers import departed_developers
    from tasks.decide.auto_ignore import PLAYBOOK as IGNORE
    from tasks.decide.auto_ignore import AutoIgnorePolicy
    from tasks.decide.commit_author_triage import PLAYBOOK as TRIAGE
    from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy
    from tasks.decide.departed_developers import DepartedDevelopersPolicy

    return {
        "departed": (departed_developers, DepartedDevelopersPolicy(), DEPARTED),
        "auto-ignore": (auto_ignore, AutoIgnorePolicy(), IGNORE),
        "triage": (commit_author_triage, CommitAuthorTriagePolicy(), TRIAGE),
    }


def run_flow(name: str, *, dry_run: bool = False) -> tuple[Any, Any]:
    """Run a playbook in this process with the adapters the environment names."""
    flow_fn, policy, _ = playbooks()[name]
    return harness.run_flow(flow_fn, policy=policy, dry_run=dry_run, max_actions=500)


def final_view(state: dict[str, Any]) -> dict[int, tuple]:
    """What a playbook decides about an incident: status, assignee, ignore reason."""
    return {
        i: (inc["status"], (inc.get("assignee_email") or "").lower() or None,
            inc.get("ignore_reason"))
        for i, inc in state["incidents"].items()
    }


def new_writes(before: dict[str, Any], after: dict[str, Any]) -> Counter:
    """(write, incident id) -> count for the writes made between two snapshots."""
    from sandbox.store import audit_write

    seen = len(before["audit_logs"])
    writes = (audit_write(log) for log in after["audit_logs"][seen:])
    return Counter(write for write in writes if write and write[0] in WRITE_EVENTS)


def count_fates(adversity: Any, fates: Counter) -> None:
    """Count each request's fate (429, 500, 502, 503, reset, ok) as the sandbox decides it."""
    decide = adversity.decide

    def counted(token_key: str) -> Any:
        fate = decide(token_key)
        fates["reset" if fate.reset else (fate.status or "ok")] += 1
        return fate

    adversity.decide = counted


@dataclass
class StressWorld:
    workspace: Any
    directory: Any
    export: Path
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    @contextmanager
    def sandbox(self, **adversity: Any) -> Iterator[Any]:
        """A fresh sandbox over the session workspace, adversity applied after start-up."""
        import sandbox as sandbox_package

        with sandbox_package.running(workspace=copy.deepcopy(self.workspace)) as box:
            box.fates = Counter()  # what adversity did, so a test can show it met each kind
            if adversity:
                count_fates(box.set_adversity(**adversity), box.fates)
            yield box

    def point_at(self, box: Any, ledger_name: str) -> str:
        """Point the API adapter and the ledger at this sandbox; returns the ledger URL."""
        ledger_url = f"sqlite:///{self.tmp / (ledger_name + '.sqlite')}"
        self.monkeypatch.setenv("GITGUARDIAN_API_URL", box.url)
        self.monkeypatch.setenv("GITGUARDIAN_API_KEY", box.token)
        self.monkeypatch.setenv("LEDGER_URL", ledger_url)
        return ledger_url


def set_common_env(monkeypatch: pytest.MonkeyPatch, directory: Any, export: Path,
                   tmp: Path) -> None:
    set_adapters_env(monkeypatch, directory, export, **FAST_RETRIES)


@pytest.fixture
def stress_world(sandbox_workspace, sandbox_directory, sandbox_export, prefect_server,
                 monkeypatch, tmp_path) -> StressWorld:
    set_common_env(monkeypatch, sandbox_directory, sandbox_export, tmp_path)
    return StressWorld(sandbox_workspace, sandbox_directory, sandbox_export, tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def clean_runs(sandbox_workspace, sandbox_directory, sandbox_export, prefect_server,
               tmp_path_factory) -> Callable[[str], dict[str, Any]]:
    """name -> the final state of one clean real run on a fresh sandbox (made once per module)."""
    cache: dict[str, dict[str, Any]] = {}
    tmp = tmp_path_factory.mktemp("clean-runs")

    def clean(name: str) -> dict[str, Any]:
        if name not in cache:
            with pytest.MonkeyPatch.context() as mp:
                set_common_env(mp, sandbox_directory, sandbox_export, tmp)
                world = StressWorld(sandbox_workspace, sandbox_directory, sandbox_export, tmp, mp)
                with world.sandbox() as box:
                    world.point_at(box, f"clean-{name}")
                    before = box.state()
                    state, result = run_flow(name)
                    assert state.is_completed(), state.message
                    after = box.state()
                    cache[name] = {"before": before, "after": after, "result": result}
        return cache[name]

    return clean


def env_for_subprocess() -> dict[str, str]:
    """This process's environment plus the session's Prefect server, so a child process does
    not start a local server of its own (6-15 s)."""
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ)
    env["PREFECT_API_URL"] = str(PREFECT_API_URL.value())
    return env
