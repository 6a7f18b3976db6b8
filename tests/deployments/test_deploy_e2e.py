"""prefect.yaml through a real Prefect server and worker, against the sandbox.

setup (work pool, Secret block) -> `prefect --no-prompt deploy --all` -> every deployment checked
through the API -> a process worker started from the checkout runs the departed-developer
deployment, triggered with parameters -> the run completed, its artifacts exist, and the
sandbox changed exactly as its ground truth says.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployments import config
from sandbox.export import environment
from tasks.decide.identity import normalise_email

from .conftest import ROOT, PrefectServer, stop, tail, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.prefect]

DEPARTED = "departed-developer-reassignment"


def _check_registered(server: PrefectServer) -> dict[str, object]:
    """Every prefect.yaml deployment is on the server with what the file says."""
    from prefect.client.orchestration import get_client

    found = {}
    with get_client(sync_client=True) as client:
        for spec in config.load():
            flow_name = spec.load_flow().name
            deployment = client.read_deployment_by_name(f"{flow_name}/{spec.name}")
            assert deployment.parameters == spec.parameters, flow_name
            registered = [(s.schedule.cron, s.schedule.timezone, s.active)
                          for s in deployment.schedules]
            assert registered == [
                (s.cron, s.timezone, s.active) for s in spec.schedules
            ], flow_name
            assert deployment.global_concurrency_limit is not None, flow_name
            assert deployment.global_concurrency_limit.limit == 1
            assert deployment.work_pool_name == config.WORK_POOL
            assert sorted(deployment.tags) == sorted(spec.tags)
            assert deployment.description == spec.description
            assert deployment.entrypoint == spec.entrypoint
            # `prefect deploy` resolved {{ $PWD }}: the worker runs the code of this checkout.
            assert deployment.pull_steps == [{"prefect.deployments.steps.set_working_directory":
                                              {"directory": str(ROOT)}}]
            found[flow_name] = deployment
    # The policy keeps its pydantic model: the UI shows a typed form for it.
    schema = found[DEPARTED].parameter_openapi_schema
    assert "policy" in schema["properties"] and "DepartedDevelopersPolicy" in json.dumps(schema)
    return found


def test_deploy_all_then_a_worker_runs_the_departed_playbook(
    prefect_server_process: PrefectServer, fresh_sandbox, sandbox_export: Path, tmp_path: Path
) -> None:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = prefect_server_process
    box = fresh_sandbox
    # setup saves the API key as a Secret block; the worker is then started WITHOUT the key in
    # its environment, so the run can only have read it from the block.
    output = server.run_cli("-m", "deployments.setup", env={
        "GITGUARDIAN_API_KEY": box.token, "GITGUARDIAN_REQUESTS_PER_MINUTE": "0"})
    assert box.token not in output
    assert "work pool 'gitguardian-remediation' created" in output
    server.run_cli("--no-prompt", "deploy", "--all")

    with temporary_settings({PREFECT_API_URL: server.url}):
        deployments = _check_registered(server)

        ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        worker_env = {**environment(sandbox_export, url=box.url), "LEDGER_URL": ledger_url}
        truth = box.workspace.ground_truth[DEPARTED]["actions"]
        want = {int(i): normalise_email(a["arguments"]["email"]) for i, a in truth.items()}
        assert want, "the sandbox workspace should hold incidents of departed assignees"
        before = box.state()

        worker_log = tmp_path / "worker.log"
        worker = server.start_worker(config.WORK_POOL, worker_env, worker_log)
        try:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                run = client.create_flow_run_from_deployment(
                    deployments[DEPARTED].id, parameters={"dry_run": False, "max_actions": 500})

                def finished():
                    if worker.poll() is not None:
                        raise AssertionError(f"the worker exited:\n{tail(worker_log)}")
                    state = client.read_flow_run(run.id).state
                    return state if state is not None and state.is_final() else None

                state = wait_until(finished, timeout=120, interval=0.5,
                                   what=f"flow run {run.id} to finish\n{tail(worker_log)}")
                assert state.is_completed(), f"{state.type}: {state.message}\n{tail(worker_log)}"
                flow_run = client.read_flow_run(run.id)
                assert flow_run.parameters["dry_run"] is False
                assert flow_run.parameters["max_actions"] == 500

                artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
                keys = {a.key for a in artifacts}
                assert {f"{DEPARTED}-plan", f"{DEPARTED}-outcomes"} <= keys, keys
        finally:
            stop(worker, times=2)

    after = box.state()
    changed = {i for i, incident in after["incidents"].items()
               if incident != before["incidents"][i]}
    assert changed == set(want)
    for incident_id, email in want.items():
        incident = after["incidents"][incident_id]
        assert incident["status"] == "ASSIGNED"
        assert normalise_email(incident["assignee_email"]) == email
    # The API key never reached the worker's output.
    assert box.token not in worker_log.read_text(errors="replace")
