"""One flow run per new-incident event (flows/new_incidents.py): the event's ids read once,
auto-ignore first, then triage on what auto-ignore left. Real sandbox, slapd, git export,
ledger and Prefect server; asserted through the sandbox's API and the ledger."""
from __future__ import annotations

import json

import pytest

from deployments.event_path import leak_like, triage_examples
from flows.auto_ignore import auto_ignore
from flows.commit_author_triage import LEFT_TO_AUTO_IGNORE, commit_author_triage
from flows.new_incidents import new_incidents
from tasks.decide.auto_ignore import PLAYBOOK as AUTO_IGNORE
from tasks.decide.auto_ignore import AutoIgnorePolicy
from tasks.decide.commit_author_triage import PLAYBOOK as TRIAGE
from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy
from tasks.decide.identity import normalise_email
from tests.fixtures.harness import run_flow

pytestmark = [pytest.mark.slapd, pytest.mark.prefect, pytest.mark.slow]


def decisions(result) -> dict[int, list[tuple[str, dict]]]:
    found: dict[int, list[tuple[str, dict]]] = {}
    for row in result["plan"]:
        found.setdefault(row["incident_id"], []).append(
            (row["action"], json.loads(row["arguments"])))
    return found


def new_leaks(box):
    """An incident by a member (triage assigns it) and a test credential by the same author
    (auto-ignore ignores it; triage alone would assign it too)."""
    template, email = triage_examples(box.workspace)[0]
    author = leak_like(box, template)
    test = leak_like(box, template, filepath="tests/fixtures/settings_test.py",
                     validity="invalid")
    return author["id"], test["id"], email


def test_auto_ignore_runs_first_and_triage_leaves_what_it_ignored(playbook_env):
    box = playbook_env.sandbox
    author_id, test_id, email = new_leaks(box)
    ids = [author_id, test_id]
    # The playbooks alone, on these ids (dry runs): auto-ignore ignores the test credential,
    # triage would assign both incidents to their author.
    state, alone = run_flow(auto_ignore, policy=AutoIgnorePolicy(), dry_run=True,
                            max_actions=50, incident_ids=ids)
    assert state.is_completed(), state.message
    assert [a for a, _ in decisions(alone).get(test_id, [])] == ["ignore"]
    assert author_id not in decisions(alone)
    state, triage_alone = run_flow(commit_author_triage, policy=CommitAuthorTriagePolicy(),
                                   dry_run=True, max_actions=50, incident_ids=ids)
    assert state.is_completed(), state.message
    assert set(decisions(triage_alone)) == {author_id, test_id}

    gets = {i: box.before("GET", f"/v1/incidents/secrets/{i}", lambda _b: None, times=None)
            for i in ids}
    state, result = run_flow(new_incidents, incident_ids=ids, dry_run=False, max_actions=50)
    assert state.is_completed(), state.message
    # The decisions are the playbooks' own, minus what auto-ignore took.
    assert decisions(result[AUTO_IGNORE]) == decisions(alone)
    assert decisions(result[TRIAGE]) == {author_id: decisions(triage_alone)[author_id]}
    left = {s["incident_id"]: s["reason"] for s in result[TRIAGE]["skipped"]}
    assert left[test_id] == LEFT_TO_AUTO_IGNORE
    # Read once for both playbooks; the read was fresh for the writes (no safety read again).
    assert {i: h.fired for i, h in gets.items()} == {author_id: 1, test_id: 1}

    client = playbook_env.client()
    test, author = client.incident(test_id), client.incident(author_id)
    assert (test.status, test.ignore_reason, test.assignee_id) == (
        "IGNORED", "test_credential", None)
    assert author.status == "ASSIGNED" and normalise_email(author.assignee_email) == email
    # Auto-ignore's ledger run ended before triage's started, both in this one flow run.
    runs = [r for r in playbook_env.ledger().runs() if not r.dry_run]
    assert [r.playbook for r in runs] == [AUTO_IGNORE, TRIAGE]
    assert runs[0].flow_run_id == runs[1].flow_run_id == str(state.state_details.flow_run_id)
    assert runs[0].ended_at <= runs[1].started_at
    assert [r.state for r in runs] == ["completed", "completed"]


def test_a_stale_read_is_read_again_before_triage_writes(playbook_env, monkeypatch):
    """The shared read is triage's safety read only while at most 10 s old: older (here the
    bound is 0 s), each incident triage writes to is read again first."""
    import tasks.act as act

    monkeypatch.setattr(act.apply_plan, "__kwdefaults__",
                        {**act.apply_plan.__kwdefaults__, "max_read_age": 0.0})
    box = playbook_env.sandbox
    author_id, test_id, _ = new_leaks(box)
    gets = {i: box.before("GET", f"/v1/incidents/secrets/{i}", lambda _b: None, times=None)
            for i in (author_id, test_id)}
    state, result = run_flow(new_incidents, incident_ids=[author_id, test_id], dry_run=False,
                             max_actions=50)
    assert state.is_completed(), state.message
    assert result[TRIAGE]["counts"] == {"applied": 1}
    # Each written incident read once more before its write; triage never reads the ignored one.
    assert {i: h.fired for i, h in gets.items()} == {author_id: 2, test_id: 2}
    assert result[TRIAGE]["max_read_age"] < 10
