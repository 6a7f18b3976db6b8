"""Test-directory auto-ignore and commit-author triage end to end on the sandbox, slapd, git and
Prefect. Expected plans come from the sandbox's ground truth (how the generator built each
incident), not from the playbooks' code."""
from __future__ import annotations

import json

import pytest

from flows.auto_ignore import auto_ignore
from flows.commit_author_triage import commit_author_triage
from tasks.decide.auto_ignore import PLAYBOOK as IGNORE
from tasks.decide.auto_ignore import AutoIgnorePolicy
from tasks.decide.commit_author_triage import PLAYBOOK as TRIAGE
from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy
from tasks.decide.identity import normalise_email
from tests.fixtures.harness import changed, ground_truth, our_notes, plan_of, run_flow

pytestmark = [pytest.mark.slapd, pytest.mark.prefect]


def run(flow_fn, policy, **parameters):
    parameters.setdefault("max_actions", 500)
    return run_flow(flow_fn, policy=policy, **parameters)


def test_auto_ignore_acts_exactly_on_the_ground_truth_once(playbook_env):
    want = ground_truth(playbook_env.sandbox, IGNORE)
    assert want, "the sandbox should hold test-path incidents"
    before = playbook_env.sandbox.state()

    state, dry = run(auto_ignore, AutoIgnorePolicy(), dry_run=True)
    assert state.is_completed(), state.message
    assert set(plan_of(dry)) == set(want)
    assert playbook_env.sandbox.state()["audit_logs"] == before["audit_logs"]

    state, real = run(auto_ignore, AutoIgnorePolicy(), dry_run=False)
    assert state.is_completed(), state.message
    after = playbook_env.sandbox.state()
    assert changed(before, after) == set(want)
    for incident_id in want:
        incident = after["incidents"][incident_id]
        assert (incident["status"], incident["ignore_reason"]) == ("IGNORED", "test_credential")
        assert len(our_notes(after["notes"], incident_id)) == 1

    state, again = run(auto_ignore, AutoIgnorePolicy(), dry_run=False)
    assert state.is_completed(), state.message
    assert again["plan"] == []
    assert playbook_env.sandbox.state()["notes"] == after["notes"]

    # The secret of one ignored incident turns valid: the recheck reopens it, with a note.
    victim = sorted(want)[0]
    playbook_env.sandbox.events.set_validity(victim, "valid")
    state, recheck = run(auto_ignore, AutoIgnorePolicy(), dry_run=False)
    assert state.is_completed(), state.message
    assert [(r["incident_id"], r["action"], r["reason"]) for r in recheck["plan"]] == [
        (victim, "reopen", "secret_became_valid")]
    final = playbook_env.sandbox.state()
    assert final["incidents"][victim]["status"] in ("TRIGGERED", "ASSIGNED")
    assert len(our_notes(final["notes"], victim)) == 2  # the ignore's note and the reopen's


def test_auto_ignore_never_touches_a_valid_or_public_incident(playbook_env):
    state, result = run(
        auto_ignore,
        AutoIgnorePolicy(validities=("invalid", "no_checker", "unknown")),
        dry_run=True,
    )
    assert state.is_completed(), state.message
    incidents = playbook_env.sandbox.state()["incidents"]
    for incident_id in plan_of(result):
        incident = incidents[incident_id]
        assert incident["validity"] != "valid"
        assert not {"PUBLICLY_EXPOSED", "PUBLICLY_LEAKED"} & set(incident["tags"])


def test_triage_assigns_exactly_the_ground_truth_once(playbook_env):
    want = {
        i: normalise_email(a["arguments"]["email"])
        for i, a in ground_truth(playbook_env.sandbox, TRIAGE).items()
    }
    assert want, "the sandbox should hold incidents authored by members"
    before = playbook_env.sandbox.state()

    state, dry = run(commit_author_triage, CommitAuthorTriagePolicy(), dry_run=True)
    assert state.is_completed(), state.message
    assert {i: normalise_email(a["email"]) for i, a in plan_of(dry, "assign").items()} == want
    assert playbook_env.sandbox.state()["audit_logs"] == before["audit_logs"]

    state, real = run(commit_author_triage, CommitAuthorTriagePolicy(), dry_run=False)
    assert state.is_completed(), state.message
    after = playbook_env.sandbox.state()
    assert changed(before, after) == set(want)
    for incident_id, email in want.items():
        assert normalise_email(after["incidents"][incident_id]["assignee_email"]) == email
        assert len(our_notes(after["notes"], incident_id)) == 1

    state, again = run(commit_author_triage, CommitAuthorTriagePolicy(), dry_run=False)
    assert state.is_completed(), state.message
    assert again["plan"] == []


def test_triage_shares_with_a_non_member_author_without_showing_the_link(playbook_env):
    policy = CommitAuthorTriagePolicy(share_with_non_member_author=True)
    state, result = run(commit_author_triage, policy, dry_run=False)
    assert state.is_completed(), state.message
    shared = [r for r in result["outcomes"] if r["action"] == "share"]
    assert shared and {r["result"] for r in shared} == {"applied"}
    after = playbook_env.sandbox.state()
    urls = [s["share_url"] for s in after["shares"].values() if s.get("share_url")]
    assert urls
    text = json.dumps(result, default=str)
    assert not any(url in text for url in urls)
    notes = json.dumps(after["notes"])
    assert not any(url in notes for url in urls)
