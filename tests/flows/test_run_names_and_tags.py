"""Runs say what they are, in the runs list of a real local Prefect server: a dry run and a real
run of one playbook are told apart by their names and their tags, and a run that writes drops a
`dry-run` tag it was created with (a deployment's, or a Custom run's)."""
from __future__ import annotations

import re

import pytest
from prefect import tags

from flows.departed_developers import departed_developers
from flows.weekly_report import weekly_report
from tasks.decide.departed_developers import DepartedDevelopersPolicy

pytestmark = [pytest.mark.slapd, pytest.mark.prefect]

WHEN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"


def _flow_run(state):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id)


def test_dry_and_real_runs_are_told_apart_by_name_and_tag(playbook_env):
    with tags("dry-run"):  # as a deployment tagged dry-run would create the run
        dry = departed_developers(policy=DepartedDevelopersPolicy(), dry_run=True,
                                              max_actions=500, return_state=True)
        real = departed_developers(policy=DepartedDevelopersPolicy(), dry_run=False,
                                               max_actions=500, return_state=True)
    assert dry.is_completed() and real.is_completed(), (dry.message, real.message)
    dry_run, real_run = _flow_run(dry), _flow_run(real)

    assert re.fullmatch(rf"departed · DRY RUN · {WHEN}", dry_run.name), dry_run.name
    assert re.fullmatch(rf"departed · WRITES · {WHEN}", real_run.name), real_run.name
    assert "dry-run" in dry_run.tags and "writes" not in dry_run.tags
    assert "writes" in real_run.tags and "dry-run" not in real_run.tags
    assert "approved" not in real_run.tags  # nothing was above max_actions


def test_weekly_report_runs_are_named_after_their_week(playbook_env, tmp_path):
    state = weekly_report(week="2026-W10", output_dir=str(tmp_path / "reports"),
                          return_state=True)
    assert state.is_completed(), state.message
    assert re.fullmatch(rf"weekly report · 2026-W10 · {WHEN}", _flow_run(state).name)
