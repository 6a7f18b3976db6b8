"""Issue 13 end to end: a real slapd stopped in the middle of a departed-developer run.

The assignees are read while the server is up; it is then stopped by its PID, either before
the first manager chain or before the file owners' lookup. No incident may go to a later
candidate than the one the directory could not answer for: each write is the one a healthy run
makes, every other incident of the ground truth is skipped with the lookup error of the step
that failed, and the next healthy run gives each its rightful successor (no wrong owner sticks).
"""
from __future__ import annotations

import pytest

from clients.directory import Directory
from flows.departed_developers import PLAYBOOK
from tasks import enrich
from tasks.decide.identity import normalise_email
from tests.fixtures.world import wire_environment
from tests.flows.test_departed_e2e import expected, run

pytestmark = [pytest.mark.slapd, pytest.mark.prefect]
LOOKUP_ERRORS = {"manager_lookup_error", "owner_lookup_error", "committer_lookup_error"}


@pytest.fixture
def directories(slapd_factory, sandbox_export):
    """Two private servers holding the sandbox's people: one to stop, one to finish with."""
    ldif = (sandbox_export / "directory.ldif").read_text()
    servers = [slapd_factory(), slapd_factory()]
    for server in servers:
        server.load_ldif(ldif, exist_ok=True)
    return servers


def _assignees(state) -> dict[int, str]:
    return {i: normalise_email(inc.get("assignee_email"))
            for i, inc in state["incidents"].items()}


def _check_outage_run(env, result, before, truth):
    after = env.sandbox.state()
    changed = {i for i, a in _assignees(after).items() if a != _assignees(before)[i]}
    # Nothing went to anyone but the successor a healthy run chooses.
    assert all(_assignees(after)[i] == truth.get(i) for i in changed), changed
    skipped = {s["incident_id"]: s["reason"] for s in result["skipped"]}
    for incident_id in set(truth) - changed:
        assert skipped.get(incident_id) in LOOKUP_ERRORS, (incident_id, skipped.get(incident_id))
    return changed, skipped


def _healthy_rerun_matches_the_truth(env, healthy, monkeypatch, tmp_path, truth):
    env = wire_environment(env.sandbox, healthy, env.export, tmp_path, monkeypatch)
    state, _ = run(dry_run=False)
    assert state.is_completed(), state.message
    final = _assignees(env.sandbox.state())
    assert {i: final[i] for i in truth} == truth


def test_slapd_stopped_before_the_manager_chains(fresh_sandbox, directories, sandbox_export,
                                                 prefect_server, monkeypatch, tmp_path):
    stopped, healthy = directories
    env = wire_environment(fresh_sandbox, stopped, sandbox_export, tmp_path, monkeypatch)
    truth = expected(env)
    workspace = fresh_sandbox.workspace
    original = Directory.manager_chain

    def stop_then_chain(self, person, depth=2):
        stopped.stop()  # by its PID; the assignees were read while it was up
        # Every leaver's manager also holds incidents here, so the assignees' read cached their
        # entries: forget them, as a run whose managers were not read before the outage.
        self._by_dn.clear()
        return original(self, person, depth=depth)

    monkeypatch.setattr(Directory, "manager_chain", stop_then_chain)
    before = fresh_sandbox.state()
    state, result = run(dry_run=False)
    assert state.is_completed(), state.message
    changed, skipped = _check_outage_run(env, result, before, truth)
    assert not changed
    assert fresh_sandbox.state()["audit_logs"] == before["audit_logs"]
    # A leaver with a manager meets the outage at that manager: exactly manager_lookup_error
    # (before: the code owner, a committer or the fallback took it).
    people = {normalise_email(p.email): p for p in workspace.people}
    with_manager = {i for i, inc in before["incidents"].items() if i in truth
                    and (p := people.get(normalise_email(inc["assignee_email"]))) is not None
                    and p.manager_dn}
    assert with_manager
    assert {i: skipped.get(i) for i in with_manager} == {
        i: "manager_lookup_error" for i in with_manager}
    monkeypatch.setattr(Directory, "manager_chain", original)
    _healthy_rerun_matches_the_truth(env, healthy, monkeypatch, tmp_path, truth)


def test_slapd_stopped_before_the_file_owners_lookup(fresh_sandbox, directories, sandbox_export,
                                                     prefect_server, monkeypatch, tmp_path):
    stopped, healthy = directories
    env = wire_environment(fresh_sandbox, stopped, sandbox_export, tmp_path, monkeypatch)
    truth_actions = env.ground_truth(PLAYBOOK)["actions"]
    truth = expected(env)
    original = enrich.file_owners

    def stop_then_owners(*args, **kwargs):
        stopped.stop()
        return original(*args, **kwargs)

    monkeypatch.setattr(enrich, "file_owners", stop_then_owners)
    before = fresh_sandbox.state()
    state, result = run(dry_run=False)
    assert state.is_completed(), state.message
    changed, skipped = _check_outage_run(env, result, before, truth)
    by_reason = {int(i): a["reason"] for i, a in truth_actions.items()}
    # Managers were read before the stop: their reassignments stand.
    assert {i for i, r in by_reason.items() if r in ("manager", "managers_manager")} <= changed
    # After them come the code owners: an owner read with the assignees (before the stop) may
    # still take over; a listed owner never read makes the incident exactly owner_lookup_error,
    # never a committer's or the fallback's.
    owners = [i for i, r in by_reason.items() if r == "codeowner"]
    assert all(i in changed or skipped.get(i) == "owner_lookup_error" for i in owners)
    later = [i for i, r in by_reason.items() if r in ("recent_committer", "fallback")]
    assert all(i in changed or skipped.get(i) in ("owner_lookup_error", "committer_lookup_error")
               for i in later)
    lost = [i for i in (*owners, *later) if i not in changed]
    assert lost, "the outage should cost some reassignment decided by git"
    monkeypatch.setattr(enrich, "file_owners", original)
    _healthy_rerun_matches_the_truth(env, healthy, monkeypatch, tmp_path, truth)
