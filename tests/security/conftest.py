"""Shared pieces of the security tests: a client that never sleeps, canary secrets, and the
environment of a playbook run against a sandbox started with a canary API key."""
from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from clients.gitguardian import GitGuardianClient
from clients.retry import RetryPolicy

BASE = "https://api.gg.test"
KEY = "test-token-hostile"
LEAVERS_OU = "ou=leavers,dc=corp,dc=example"
# A control character other than tab and newline: never in text we show.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@pytest.fixture
def make_client() -> Callable[..., GitGuardianClient]:
    def make(max_attempts: int = 1, **kwargs: Any) -> GitGuardianClient:
        kwargs.setdefault("requests_per_minute", None)
        kwargs.setdefault(
            "retry",
            RetryPolicy(max_attempts=max_attempts, sleep=lambda _s: None, random=lambda: 0.5),
        )
        return GitGuardianClient(BASE, KEY, **kwargs)

    return make


@pytest.fixture
def canary_key() -> str:
    # Distinctive, made at run time: never a realistic-looking credential in the repository.
    return "canary-api-key-" + secrets.token_hex(12)


@pytest.fixture
def canary_sandbox(sandbox_workspace, canary_key) -> Iterator[Any]:
    import sandbox as sandbox_package

    with sandbox_package.running(workspace=copy.deepcopy(sandbox_workspace),
                                 token=canary_key) as box:
        assert box.token == canary_key
        yield box


@pytest.fixture
def canary_env(canary_sandbox, sandbox_directory, sandbox_export, prefect_server, monkeypatch,
               tmp_path):
    """Like tests.fixtures.world.playbook_env, but the API key is the canary."""
    from tests.fixtures.world import wire_environment

    yield wire_environment(canary_sandbox, sandbox_directory, sandbox_export, tmp_path, monkeypatch)


# --------------------------------------------------------------------------- what a run left

def flush_prefect_logs() -> None:
    """Send the logs Prefect still holds in its batch to the server before they are read."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)


def run_records(flow_run_ids: list[Any]) -> dict[str, list[str]]:
    """Every artifact (markdown, tables, descriptions) and every log message the Prefect server
    holds for these flow runs, as text."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    flush_prefect_logs()
    ids = [i for i in flow_run_ids if i is not None]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)))
    return {
        "artifacts": [f"{a.key} {a.type} {a.description} {a.data}" for a in artifacts],
        "markdown": [str(a.data) for a in artifacts if a.type == "markdown"],
        "logs": [f"{log.name} {log.message}" for log in logs],
    }
