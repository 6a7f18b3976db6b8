"""Hostile input corpus (test_hostile_corpus.py), end to end: the playbooks on a sandbox
holding hostile incidents.
"""
from __future__ import annotations

import json

import pytest

from tests.security.conftest import CONTROL

# --------------------------------------------------------------------------- end to end

SCRIPT = "<script>alert(1)</script>"


def _inject_hostile(box) -> dict[str, int]:
    """Hostile incidents in a live sandbox, one hostile source among them."""
    store = box.store
    template = next(iter(store.sources.values()))
    hostile_source = {**template, "id": 990_001, "full_name": "../../--upload-pack=touch pwned",
                      "url": "https://example.invalid/hostile"}
    store.sources[hostile_source["id"]] = hostile_source
    new = box.events.new_incident
    return {
        "assignee-filter": new(status="ASSIGNED", assignee_email="*)(mail=*",
                               filepath="--upload-pack=touch pwned", author_email="*",
                               source_id=hostile_source["id"])["id"],
        "assignee-script": new(status="ASSIGNED", assignee_email=f"{SCRIPT}@corp.example",
                               incident_name=f"{SCRIPT}\x1b[2J", filepath="../../etc/passwd",
                               author_email=f"{SCRIPT}@corp.example")["id"],
        "author-nul": new(validity="invalid", author_email="x@corp.example\x00)(mail=*",
                          author_name="<img src=x onerror=alert(1)>",
                          filepath=f"tests/{SCRIPT}\u202e.py")["id"],
        "author-zero-width": new(validity="invalid", author_email="dev\u200b@corp.example",
                                 filepath="tests/../config/prod.py",
                                 source_id=hostile_source["id"])["id"],
    }


def _flow(flow_fn, **parameters):
    parameters.setdefault("max_actions", 500)
    state = flow_fn(return_state=True, **parameters)
    return state, state.result(raise_on_failure=False)


@pytest.mark.slapd
@pytest.mark.prefect
def test_playbooks_on_a_sandbox_with_hostile_incidents(playbook_env):
    from flows.auto_ignore import auto_ignore
    from flows.commit_author_triage import commit_author_triage
    from flows.departed_developers import PLAYBOOK as DEPARTED
    from flows.departed_developers import departed_developers
    from tasks.decide.auto_ignore import PLAYBOOK as IGNORE
    from tasks.decide.auto_ignore import AutoIgnorePolicy
    from tasks.decide.commit_author_triage import PLAYBOOK as TRIAGE
    from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy
    from tasks.decide.departed_developers import DepartedDevelopersPolicy
    from tasks.decide.identity import normalise_email
    from tests.security.conftest import run_records

    hostile = _inject_hostile(playbook_env.sandbox)
    hostile_ids = set(hostile.values())
    before = playbook_env.sandbox.state()

    def truth(playbook):
        return {int(i): a for i, a in playbook_env.ground_truth(playbook)["actions"].items()}

    def planned(result, action):
        return {r["incident_id"]: json.loads(r["arguments"]) for r in result["plan"]
                if r["action"] == action}

    # Triage (real): the clean incidents are assigned exactly as in a clean run, no hostile one.
    triage_state, triage = _flow(commit_author_triage, policy=CommitAuthorTriagePolicy(),
                                 dry_run=False)
    assert triage_state.is_completed(), triage_state.message
    assert {i: normalise_email(a["email"]) for i, a in planned(triage, "assign").items()} == {
        i: normalise_email(a["arguments"]["email"]) for i, a in truth(TRIAGE).items()}
    skipped = {r["incident_id"]: r for r in triage["skipped"]}
    assert {hostile["author-nul"], hostile["author-zero-width"]} <= set(skipped)

    # Auto-ignore (dry): the test-path incident with a <script> file name is a correct ignore;
    # "tests/../config/prod.py" is not a test path.
    ignore_state, ignore = _flow(auto_ignore, policy=AutoIgnorePolicy(),
                                 dry_run=True)
    assert ignore_state.is_completed(), ignore_state.message
    assert set(planned(ignore, "ignore")) == set(truth(IGNORE)) | {hostile["author-nul"]}
    reasons = {r["incident_id"]: r["reason"] for r in ignore["skipped"]}
    assert reasons[hostile["author-zero-width"]] == "production_path"

    # Departed (real): hostile assignees are nobody the directory knows: left alone.
    departed_state, departed = _flow(departed_developers, policy=DepartedDevelopersPolicy(),
                                     dry_run=False)
    assert departed_state.is_completed(), departed_state.message
    assert set(planned(departed, "assign")) == set(truth(DEPARTED))
    assert {o["result"] for o in departed["outcomes"]} == {"applied"}

    # The hostile incidents are exactly as they were: no write, no note.
    after = playbook_env.sandbox.state()
    for incident_id in hostile_ids:
        assert after["incidents"][incident_id] == before["incidents"][incident_id]
        assert after["notes"].get(incident_id, []) == before["notes"].get(incident_id, [])

    # Results hold no raw control character; Markdown artifacts hold hostile text only escaped.
    for result in (triage, ignore, departed):
        for row in result["plan"] + result["skipped"] + result["outcomes"]:
            for value in row.values():
                assert not CONTROL.search(str(value)), row
    records = run_records([s.state_details.flow_run_id
                           for s in (triage_state, ignore_state, departed_state)])
    assert records["markdown"], "each run publishes a Markdown summary"
    for text in records["markdown"]:
        assert SCRIPT not in text and "<img" not in text
        assert not CONTROL.search(text.replace("\n", ""))
