"""The runs list of a real local Prefect server's UI, rendered by headless Chromium after one dry
and one real run of a playbook: the two are told apart by name and by tag. And the real run's
plan artifact, opened in the UI, links its incidents to GitGuardian and names the new assignee
by e-mail."""
from __future__ import annotations

import re

import pytest

from tests.fixtures.browser import Chromium, prefect_ui  # noqa: F401 - the fixture
from tests.fixtures.world import wire_environment

pytestmark = [pytest.mark.slapd, pytest.mark.prefect, pytest.mark.slow]

WHEN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"
# Each row of the runs list: its flow run id (the row's checkbox), its name and its tags.
ROWS = """[...document.querySelectorAll('.flow-run-list-item')].map(row => ({
    id: row.querySelector('input[type=checkbox]').value,
    name: row.querySelector('.flow-run-bread-crumbs__flow-run-link').textContent.trim(),
    tags: [...row.querySelectorAll('.state-list-item__tags .p-tag')]
        .map(t => t.textContent.trim()).filter(t => t && !t.startsWith('+')),
}))"""


@pytest.fixture(scope="module")
def ui_runs(prefect_ui, sandbox_workspace, sandbox_directory, sandbox_export,  # noqa: F811
            tmp_path_factory):
    """One dry and one real run on a sandbox of their own, made once: both tests only read."""
    import copy

    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    import sandbox as sandbox_package
    from flows.departed_developers import departed_developers
    from tasks.decide.departed_developers import DepartedDevelopersPolicy

    with sandbox_package.running(workspace=copy.deepcopy(sandbox_workspace)) as box, \
            pytest.MonkeyPatch.context() as monkeypatch, \
            temporary_settings({PREFECT_API_URL: prefect_ui.api_url,
                                PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        env = wire_environment(box, sandbox_directory, sandbox_export,
                               tmp_path_factory.mktemp("ui-runs"), monkeypatch)
        dry = departed_developers(policy=DepartedDevelopersPolicy(), dry_run=True,
                                              max_actions=500, return_state=True)
        real = departed_developers(policy=DepartedDevelopersPolicy(), dry_run=False,
                                               max_actions=500, return_state=True)
        assert dry.is_completed() and real.is_completed(), (dry.message, real.message)
        yield {"dry": str(dry.state_details.flow_run_id),
               "real": str(real.state_details.flow_run_id), "result": real.result(), "env": env}
        # Send what Prefect still holds for this server (logs, events) while it is up: its
        # workers are kept per API URL, and would retry a stopped server at the session's exit.
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=30)
        EventsWorker.drain_all(timeout=30)


def test_runs_list_tells_dry_and_real_runs_apart(prefect_ui, ui_runs, tmp_path):  # noqa: F811
    with Chromium(width=1280, height=1000) as browser:
        browser.open(f"{prefect_ui.url}/runs")
        browser.wait_for("document.querySelectorAll('.flow-run-list-item').length >= 2", timeout=60)
        rows = {row["id"]: row for row in browser.evaluate(ROWS)}
        browser.screenshot(tmp_path / "runs-list.png")
    dry, real = rows[ui_runs["dry"]], rows[ui_runs["real"]]
    assert re.fullmatch(rf"departed · DRY RUN · {WHEN}", dry["name"]), dry
    assert re.fullmatch(rf"departed · WRITES · {WHEN}", real["name"]), real
    assert "dry-run" in dry["tags"] and "writes" not in dry["tags"], dry
    assert "writes" in real["tags"] and "dry-run" not in real["tags"], real


def test_plan_artifact_in_the_ui_links_incidents_and_names_people(prefect_ui, ui_runs,  # noqa: F811
                                                                  tmp_path):
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    with SyncPrefectClient(prefect_ui.api_url) as client:
        (plan,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[ui_runs["real"]]),
            key=ArtifactFilterKey(any_=["departed-developer-reassignment-plan"])))
    decisions = ui_runs["result"]["plan"]
    assert decisions, "the seeded workspace has departed assignees to reassign"
    first = decisions[0]
    urls = {i["id"]: i["gitguardian_url"]
            for i in ui_runs["env"].sandbox.state()["incidents"].values()}
    new_assignee = re.search(r'"email": "([^"]+)"', first["arguments"]).group(1)
    with Chromium(width=1280, height=900) as browser:
        browser.open(f"{prefect_ui.url}/artifacts/artifact/{plan.id}")
        browser.wait_for("document.querySelectorAll('table tbody tr').length >= 1", timeout=60)
        headers = browser.evaluate("[...document.querySelectorAll('table th')]"
                                   ".map(th => th.textContent.trim())")
        cells = browser.evaluate("[...document.querySelector('table tbody tr').children]"
                                 ".map(td => td.innerText.trim())")
        link = browser.evaluate("(a => a && {text: a.textContent.trim(), href: a.href})"
                                "(document.querySelector('table tbody tr a'))")
        browser.screenshot(tmp_path / "plan-artifact.png")
    assert headers[:5] == ["incident", "action", "who / what", "why", "evidence"], headers
    assert link == {"text": str(first["incident_id"]), "href": urls[first["incident_id"]]}
    assert cells[1] == "assign" and cells[2].startswith(f"to {new_assignee}"), cells
    assert "member_id" not in " ".join(cells) and "{" not in " ".join(cells)
