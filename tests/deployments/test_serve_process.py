"""`python -m deployments.serve` against a real server: every deployment registered, scheduled."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deployments import config

from .conftest import ROOT, PrefectServer, stop, tail, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.prefect]


def test_serve_registers_every_deployment_with_its_schedule(
    prefect_server_process: PrefectServer, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    specs = config.load()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=ROOT,
                                   env=prefect_server_process.env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with temporary_settings({PREFECT_API_URL: prefect_server_process.url}):
            with get_client(sync_client=True) as client:
                def registered():
                    if process.poll() is not None:
                        raise AssertionError(f"serve exited:\n{tail(log)}")
                    found = client.read_deployments()
                    return found if len(found) == len(specs) else None

                found = wait_until(registered, timeout=90, what=f"serve's deployments\n{tail(log)}")
    finally:
        stop(process, times=2)
    by_name = {d.name: d for d in found}
    for spec in specs:
        deployment = by_name[spec.name]
        assert deployment.parameters == spec.parameters
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [
            (s.cron, s.timezone) for s in spec.schedules]
        assert deployment.global_concurrency_limit is not None
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.work_pool_name is None  # served in-process, no worker needed
