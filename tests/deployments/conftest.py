"""Real Prefect processes for the deployment tests: a server and a worker, each a subprocess
stopped by its PID (its own process group), never by name.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

# The process helpers the deployment tests import from here (one home: deployments/processes.py).
from deployments.processes import free_port, start_prefect_server, stop, tail, wait_until

__all__ = ["ROOT", "PrefectServer", "_base_env", "free_port", "stop", "tail", "wait_until"]

from tests.fixtures.prefect import seed_prefect_home

ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


@dataclass
class PrefectServer:
    url: str  # the API URL, ending in /api
    env: dict[str, str]  # the environment for CLI/worker subprocesses that talk to it
    home: Path
    log: Path

    def run_cli(self, *args: str, env: Mapping[str, str] | None = None,
                timeout: float = 120) -> str:
        """Run `prefect ...` (or `python -m <module>` when args[0] is '-m') from the checkout."""
        command = [sys.executable, *args] if args[0] == "-m" else [*PREFECT, *args]
        # PWD as a shell in the checkout would set it: prefect.yaml's pull step reads it.
        done = subprocess.run(command, cwd=ROOT, env={**self.env, "PWD": str(ROOT), **(env or {})},
                              capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout + done.stderr

    def start_worker(self, pool: str, env: Mapping[str, str], log: Path,
                     args: Sequence[str] = ()) -> subprocess.Popen:
        """`prefect worker start --pool POOL *args`, polling every second."""
        worker_env = {**self.env, **env, "PREFECT_WORKER_QUERY_SECONDS": "1", "PWD": str(ROOT)}
        command = [*PREFECT, "worker", "start", "--pool", pool, *args]
        with open(log, "wb") as out:
            return subprocess.Popen(command, cwd=ROOT,
                                    env=worker_env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    for name in ("GITGUARDIAN_API_KEY", "GITGUARDIAN_API_URL", "LDAP_URL", "LDAP_PASSWORD",
                 "DIRECTORY_JSON", "GIT_MIRRORS_ROOT", "LEDGER_URL"):
        env.pop(name, None)
    env.update(
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_HOME=str(home),
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        # Schedules are registered and checked, but no scheduled run may start during a test:
        # the only run a worker sees is the one the test triggers.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
    )
    return env


@pytest.fixture
def prefect_server_process(tmp_path: Path, prefect_db_template: Path) -> Iterator[PrefectServer]:
    """`prefect server start` on a free loopback port with its own PREFECT_HOME (and SQLite,
    a copy of the session's migrated template)."""
    home = tmp_path / "prefect-home"
    seed_prefect_home(home, prefect_db_template)
    env = _base_env(home)
    log = tmp_path / "server.log"
    process, url = start_prefect_server(tmp_path, env, log)
    try:
        yield PrefectServer(url=url, env={**env, "PREFECT_API_URL": url}, home=home, log=log)
    finally:
        stop(process)
