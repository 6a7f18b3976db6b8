"""Approval as a form, through a real Prefect server and `python -m deployments.serve` (the
deployments of prefect.yaml, in one process) against a sandbox.

The departed-developer deployment `daily` writes by default; started with `max_actions=1`, its
plan is above the limit: the run is suspended (the serve process is free), its Resume form
holds the plan's summary with people's e-mails. Then, through the Prefect API:
- declined, with a reason: the run ends Cancelled "not approved, nothing written", nothing
  changed in the sandbox, the reason in the ledger;
- not answered within its `approval_timeout_hours`: Cancelled (the automation serve ensures),
  nothing written;
- approved, with a reason: the run applies the plan, the reason in the ledger.
The three share one server, serve process and sandbox (in this order: an approved plan leaves
nothing for the next). So does the check that serve registers every deployment of prefect.yaml
with its schedule (one server and serve process fewer to start), and one run of
`new-incidents/on-events` whose two playbooks each suspend it for their own approval (other
incidents than departed's: TRIGGERED ones).
"""
from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from deployments import config
from sandbox.export import environment
from tasks import approval
from tasks.decide.auto_ignore import PLAYBOOK as AUTO_IGNORE
from tasks.decide.commit_author_triage import PLAYBOOK as TRIAGE
from tasks.decide.identity import normalise_email
from tests.fixtures.prefect import seed_prefect_home

from .conftest import ROOT, PrefectServer, _base_env, free_port, stop, tail, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.prefect]

DEPARTED = "departed-developer-reassignment"
NEW_INCIDENTS = "new-incidents/on-events"


@dataclass
class Served:
    server: PrefectServer
    box: Any
    ledger_url: str
    log: Path

    def client(self):
        from prefect.client.orchestration import get_client

        return get_client(sync_client=True)

    def start(self, name: str = f"{DEPARTED}/daily", **parameters: Any) -> Any:
        with self.client() as client:
            def registered():  # serve registers its deployments one after another
                try:
                    return client.read_deployment_by_name(name)
                except Exception:  # noqa: BLE001 - not yet
                    return None

            deployment = wait_until(registered, timeout=90,
                                    what=f"the deployment {name}\n{tail(self.log)}")
            return client.create_flow_run_from_deployment(
                deployment.id, parameters={"dry_run": False, "max_actions": 1, **parameters})

    def state(self, run_id: Any) -> Any:
        with self.client() as client:
            return client.read_flow_run(run_id).state

    def wait(self, run_id: Any, what: str, check, timeout: float = 180) -> Any:
        def done():
            state = self.state(run_id)
            return state if state is not None and check(state) else None

        return wait_until(done, timeout=timeout, interval=0.5,
                          what=f"{what} of {run_id}\n{tail(self.log)}")

    def ledger(self):
        from clients.ledger import Ledger

        return Ledger(self.ledger_url)


@pytest.fixture(scope="module")
def served(tmp_path_factory, prefect_db_template, sandbox_workspace,
           sandbox_export) -> Iterator[Served]:
    import copy

    from prefect.settings import PREFECT_API_URL, temporary_settings

    import sandbox as sandbox_package

    tmp = tmp_path_factory.mktemp("approval")
    home = tmp / "prefect-home"
    seed_prefect_home(home, prefect_db_template)
    # The server fails a suspended run past its timeout within a second, not five (default).
    env = {**_base_env(home), "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS": "1"}
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    server_log, serve_log = tmp / "server.log", tmp / "serve.log"
    with open(server_log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)], cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    serve = None
    try:
        def healthy() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"prefect server exited early:\n{tail(server_log)}")
            try:
                return requests.get(f"{url}/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, timeout=120, what="the Prefect server's /api/health")
        with sandbox_package.running(workspace=copy.deepcopy(sandbox_workspace)) as box:
            ledger_url = f"sqlite:///{tmp / 'ledger.sqlite'}"
            serve_env = {
                **env, "PREFECT_API_URL": url, "PWD": str(ROOT),
                "PREFECT_RUNNER_POLL_FREQUENCY": "1",
                **environment(sandbox_export, url=box.url, key=box.token),
                "LEDGER_URL": ledger_url,
            }
            with open(serve_log, "wb") as out:
                serve = subprocess.Popen([sys.executable, "-m", "deployments.serve"], cwd=ROOT,
                                         env=serve_env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            with temporary_settings({PREFECT_API_URL: url}):
                found = PrefectServer(url=url, env={**env, "PREFECT_API_URL": url}, home=home,
                                      log=server_log)
                served = Served(found, box, ledger_url, serve_log)

                def registered():
                    if serve.poll() is not None:
                        raise AssertionError(f"serve exited:\n{tail(serve_log)}")
                    with served.client() as client:
                        try:
                            return client.read_deployment_by_name(f"{DEPARTED}/daily")
                        except Exception:  # noqa: BLE001 - not yet
                            return None

                wait_until(registered, timeout=180, what=f"serve's deployments\n{tail(serve_log)}")
                yield served
    finally:
        if serve is not None:
            stop(serve, times=2)
        stop(server)


def _suspended(served: Served, **parameters: Any) -> Any:
    run = served.start(**parameters)
    _wait_suspended(served, run.id)
    return run


def _wait_suspended(served: Served, run_id: Any) -> Any:
    state = served.wait(run_id, "suspension", lambda s: s.is_paused() or s.is_final())
    assert state.is_paused() and state.name == "Suspended", (state, tail(served.log))
    return state


def _answer(served: Served, run_id: Any, **run_input: Any) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(run_id, run_input=run_input)


def _ledger_runs(served: Served, run_id: Any) -> list[Any]:
    return served.ledger().runs(DEPARTED, flow_run_id=str(run_id))


def test_a_declined_approval_ends_cancelled_and_writes_nothing(served: Served) -> None:
    from prefect.input.actions import read_flow_run_input

    box = served.box
    before = box.state()
    run = _suspended(served)
    with served.client() as client:
        assert "awaiting-approval" in client.read_flow_run(run.id).tags
    # The form: approve and a mandatory reason; its description is the plan's summary, with
    # people's e-mails (not member ids) and the plan artifact's name.
    schema = read_flow_run_input("suspended-approval-schema", flow_run_id=run.id)
    assert set(schema["properties"]) == {"approve", "reason"}
    assert schema["required"] == ["reason"]
    description = read_flow_run_input("suspended-approval-description", flow_run_id=run.id)
    truth = box.workspace.ground_truth[DEPARTED]["actions"]
    assert f"{len(truth)} writes planned" in description and "limit of 1" in description
    assert "| assign | " in description and f"`{DEPARTED}-plan`" in description
    emails = {normalise_email(a["arguments"]["email"]) for a in truth.values()}
    assert any(email in description.casefold() for email in emails), description
    assert "member_id" not in description
    # A resume without a reason is refused by the server (the form's schema).
    with pytest.raises(RuntimeError, match="reason"):
        _answer(served, run.id, approve=False)

    _answer(served, run.id, approve=False, reason="Not during the freeze, INC-7")
    state = served.wait(run.id, "the end", lambda s: s.is_final())
    assert state.is_cancelled(), (state, tail(served.log))
    assert "not approved, nothing written" in state.message
    assert "Traceback" not in (state.message or "")
    after = box.state()
    assert after["incidents"] == before["incidents"] and after["notes"] == before["notes"]
    assert after["audit_logs"] == before["audit_logs"]
    ends = {r.state: r.summary for r in _ledger_runs(served, run.id)}
    assert ends.get(approval.DECLINED, {}).get("reason") == "Not during the freeze, INC-7"
    with served.client() as client:
        tags = client.read_flow_run(run.id).tags
    assert "declined" in tags and "awaiting-approval" not in tags


def test_an_unanswered_approval_times_out_cancelled(served: Served) -> None:
    box = served.box
    before = box.state()
    run = _suspended(served, approval_timeout_hours=0.002)  # 7 s
    state = served.wait(run.id, "the timeout", lambda s: s.is_cancelled(), timeout=120)
    assert state.message == approval.TIMEOUT_MESSAGE
    after = box.state()
    assert after["incidents"] == before["incidents"] and after["notes"] == before["notes"]
    assert [r.state for r in _ledger_runs(served, run.id)] == [approval.AWAITING]


def test_an_approved_plan_is_applied_and_the_reason_is_in_the_ledger(served: Served) -> None:
    box = served.box
    truth = box.workspace.ground_truth[DEPARTED]["actions"]
    want = {int(i): normalise_email(a["arguments"]["email"]) for i, a in truth.items()}
    reason = f"Reviewed the list with HR ({uuid.uuid4().hex[:6]})"
    run = _suspended(served)
    _answer(served, run.id, approve=True, reason=reason)
    state = served.wait(run.id, "the end", lambda s: s.is_final())
    assert state.is_completed(), (state, tail(served.log))

    after = box.state()
    for incident_id, email in want.items():
        assert normalise_email(after["incidents"][incident_id]["assignee_email"]) == email
    runs = _ledger_runs(served, run.id)
    asked = [r for r in runs if r.state == approval.APPROVED]
    assert len(asked) == 1 and asked[0].summary["reason"] == reason
    applied = [r for r in runs if r.state == "completed"]
    assert len(applied) == 1 and applied[0].summary["approval"]["reason"] == reason
    assert applied[0].summary["counts"] == {"applied": len(want)}
    with served.client() as client:
        assert "approved" in client.read_flow_run(run.id).tags


def test_serve_registers_every_deployment_with_its_schedule(served: Served) -> None:
    specs = config.load()
    with served.client() as client:
        def registered():
            found = client.read_deployments()
            return found if len(found) == len(specs) else None

        found = wait_until(registered, timeout=90, what=f"serve's deployments\n{tail(served.log)}")
    by_name = {d.name: d for d in found}
    for spec in specs:
        deployment = by_name[spec.name]
        assert deployment.parameters == spec.parameters
        assert [(s.schedule.cron, s.schedule.timezone) for s in deployment.schedules] == [
            (s.cron, s.timezone) for s in spec.schedules]
        assert deployment.global_concurrency_limit is not None
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.work_pool_name is None  # served in-process, no worker needed


def _new_incident_ids(served: Served) -> tuple[list[int], list[int]]:
    """Ids for new-incidents/on-events from the ground truth, still as generated: two test
    credentials auto-ignore ignores (TRIGGERED; triage alone would assign them too) and two
    incidents only triage acts on (assigned to their author, a member)."""
    truth = served.box.workspace.ground_truth
    ignore, assign = truth[AUTO_IGNORE]["actions"], truth[TRIAGE]["actions"]
    seen_by_ignore = set(ignore) | set(truth[AUTO_IGNORE]["skipped"])
    incidents = served.box.state()["incidents"]

    def untouched(key: str) -> bool:
        incident = incidents[int(key)]
        return incident["status"] == "TRIGGERED" and incident["assignee_id"] is None

    tests = [int(k) for k, a in sorted(ignore.items()) if a["action"] == "ignore"
             and untouched(k) and assign.get(k, {}).get("action") == "assign"][:2]
    authors = [int(k) for k, a in sorted(assign.items()) if a["action"] == "assign"
               and untouched(k) and k not in seen_by_ignore][:2]
    assert len(tests) == 2 and len(authors) == 2, (tests, authors)
    return tests, authors


def _writes(state: dict[str, Any], incident_ids: list[int]) -> list[tuple[str, int]]:
    """The sandbox's audit log of writes to these incidents: (event, incident id)."""
    wanted = {str(i) for i in incident_ids}
    return sorted((entry["event_name"], int(target)) for entry in state["audit_logs"]
                  for target in entry["target_ids"] if target in wanted)


def test_two_playbooks_of_one_run_each_suspend_for_their_own_approval(served: Served) -> None:
    """new-incidents/on-events with max_actions=1 and both plans above it: suspended for
    auto-ignore's approval (nothing written), approved: auto-ignore's plan applied, suspended
    again for triage's (its own pause key), approved: triage's plan applied. Each write once,
    the ignored test credentials never assigned, each answer recorded against its own run."""
    box = served.box
    tests, authors = _new_incident_ids(served)
    ids = tests + authors
    truth = box.workspace.ground_truth[TRIAGE]["actions"]
    before = box.state()
    run = served.start(NEW_INCIDENTS, incident_ids=ids)

    first = _wait_suspended(served, run.id)
    assert first.state_details.pause_key == f"approval-{AUTO_IGNORE}"
    assert _writes(box.state(), ids) == _writes(before, ids) == []
    _answer(served, run.id, approve=True, reason="Test fixtures only (INC-1)")

    second = served.wait(run.id, "the second suspension", lambda s: s.is_final() or (
        s.is_paused() and s.id != first.id))
    assert second.is_paused() and second.name == "Suspended", (second, tail(served.log))
    assert second.state_details.pause_key == f"approval-{TRIAGE}"
    middle = box.state()
    assert _writes(middle, ids) == sorted(
        ("secret_incident.ignored", i) for i in tests)
    for i in tests:
        assert middle["incidents"][i]["status"] == "IGNORED"
        assert middle["incidents"][i]["ignore_reason"] == "test_credential"
    for i in authors:
        assert middle["incidents"][i]["status"] == "TRIGGERED"
        assert middle["incidents"][i]["assignee_id"] is None
    _answer(served, run.id, approve=True, reason="Authors confirmed (INC-2)")

    state = served.wait(run.id, "the end", lambda s: s.is_final())
    assert state.is_completed(), (state, tail(served.log))
    after = box.state()
    # Each write once: the ignores of the first approval, the assignments of the second.
    assert _writes(after, ids) == sorted(
        [("secret_incident.ignored", i) for i in tests]
        + [("secret_incident.assigned", i) for i in authors])
    for i in authors:
        assert normalise_email(after["incidents"][i]["assignee_email"]) == normalise_email(
            truth[str(i)]["arguments"]["email"])
    for i in tests:
        incident = after["incidents"][i]
        assert (incident["status"], incident["assignee_id"]) == ("IGNORED", None)

    # The ledger: each playbook's answer against the run that asked for it, its plan applied
    # by the next attempt; the third attempt found nothing left for auto-ignore.
    ledger = served.ledger()
    ignores = ledger.runs(AUTO_IGNORE, flow_run_id=str(run.id))
    triages = ledger.runs(TRIAGE, flow_run_id=str(run.id))
    assert [r.state for r in ignores] == [approval.APPROVED, "completed", "completed"]
    assert [r.state for r in triages] == [approval.APPROVED, "completed"]
    assert ignores[0].summary["reason"] == "Test fixtures only (INC-1)"
    assert triages[0].summary["reason"] == "Authors confirmed (INC-2)"
    assert sorted(d["incident_id"] for d in ledger.decisions(ignores[0].id)) == sorted(tests)
    assert sorted(d["incident_id"] for d in ledger.decisions(triages[0].id)) == sorted(authors)
    assert ignores[1].summary["counts"] == {"applied": 2}
    assert ignores[1].summary["approval"]["reason"] == "Test fixtures only (INC-1)"
    assert ignores[2].summary["counts"] == {}
    assert triages[1].summary["counts"] == {"applied": 2}
    assert triages[1].summary["approval"]["reason"] == "Authors confirmed (INC-2)"
