"""Departed-developer reassignment end to end: sandbox API over HTTP, a real slapd loaded with the
sandbox's directory, the sandbox's git repositories, a local Prefect server, a SQLite ledger.
The expected plan is the sandbox's ground truth, computed by the generator from how it built
the workspace, not by this playbook's code."""
from __future__ import annotations

import pytest

from flows.departed_developers import PLAYBOOK, departed_developers
from tasks.decide.departed_developers import DepartedDevelopersPolicy
from tasks.decide.identity import normalise_email
from tests.fixtures.harness import changed, ground_truth, our_notes, plan_of, run_flow

pytestmark = [pytest.mark.slapd, pytest.mark.prefect]


def run(**parameters):
    parameters.setdefault("policy", DepartedDevelopersPolicy())
    parameters.setdefault("max_actions", 500)
    return run_flow(departed_developers, **parameters)


def expected(env) -> dict[int, str]:
    truth = ground_truth(env.sandbox, PLAYBOOK)
    return {i: normalise_email(a["arguments"]["email"]) for i, a in truth.items()}


def planned(result) -> dict[int, str]:
    return {i: normalise_email(a["email"]) for i, a in plan_of(result).items()}


def test_dry_run_plans_the_ground_truth_and_changes_nothing(playbook_env):
    before = playbook_env.sandbox.state()
    state, result = run(dry_run=True)
    assert state.is_completed(), state.message
    assert expected(playbook_env), "the sandbox workspace should hold departed assignees"
    assert planned(result) == expected(playbook_env)
    assert {o["result"] for o in result["outcomes"]} == {"would_apply"}
    after = playbook_env.sandbox.state()
    assert after["incidents"] == before["incidents"]
    assert after["notes"] == before["notes"]
    assert after["audit_logs"] == before["audit_logs"]


def test_real_run_reassigns_exactly_the_ground_truth_once(playbook_env):
    want = expected(playbook_env)
    before = playbook_env.sandbox.state()
    state, result = run(dry_run=False)
    assert state.is_completed(), state.message
    assert {o["result"] for o in result["outcomes"]} == {"applied"}

    after = playbook_env.sandbox.state()
    assert changed(before, after) == set(want)
    for incident_id, email in want.items():
        incident = after["incidents"][incident_id]
        assert incident["status"] == "ASSIGNED"
        assert normalise_email(incident["assignee_email"]) == email
        ours = our_notes(after["notes"], incident_id)
        assert len(ours) == 1, f"incident {incident_id} should hold exactly one note of ours"

    # The ledger holds an intent and a result for every write.
    ledger = playbook_env.ledger()
    assert not ledger.interrupted()
    assert {a.incident_id for a in ledger.applied(PLAYBOOK)} == set(want)

    # A second run finds nothing left to do.
    state, again = run(dry_run=False)
    assert state.is_completed(), state.message
    assert again["plan"] == []
    assert playbook_env.sandbox.state()["notes"] == after["notes"]


def test_directory_outage_writes_nothing_and_fails_clearly(playbook_env, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LDAP_URL", f"ldap://127.0.0.1:{port}/")
    before = playbook_env.sandbox.state()
    state, result = run(dry_run=False)
    assert state.is_failed()
    assert "directory" in str(result).lower() and "unavailable" in str(result).lower()
    assert playbook_env.directory.password not in str(result)
    assert playbook_env.sandbox.state()["audit_logs"] == before["audit_logs"]


def test_blast_radius_limit_stops_every_write(playbook_env):
    before = playbook_env.sandbox.state()
    state, result = run(dry_run=False, max_actions=1)
    assert state.is_failed()
    assert "limit of 1" in str(result)
    assert playbook_env.sandbox.state()["audit_logs"] == before["audit_logs"]


def test_missing_scope_is_named_before_anything_else(playbook_env, monkeypatch):
    monkeypatch.setenv("GITGUARDIAN_API_KEY", playbook_env.sandbox.tokens["read"])
    state, result = run(dry_run=False)
    assert state.is_failed()
    assert "incidents:write" in str(result)
