"""End to end: the bulk-remediation flow on the sandbox API, under a real local Prefect server.

Each action with its note, a dry run that writes nothing, a re-run that acts on nothing new,
refusals before any request and the offboarding preset (approval: tests/deployments/).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flows.bulk_remediation import bulk_remediation, main
from tasks.decide.bulk_remediation import BulkAction, BulkRequest, BulkSelection, RefusedRequest
from tests.fixtures.harness import point_at_sandbox, run_flow

pytestmark = [pytest.mark.prefect]

REASON = "Bulk test: rotation INC-42 finished"


@pytest.fixture
def use(prefect_server, monkeypatch, tmp_path):
    """Point the flow at a sandbox with the named token; the ledger in a temp SQLite file."""

    def point(box, token: str = "full") -> None:
        point_at_sandbox(monkeypatch, box, tmp_path / "ledger.sqlite", token)

    return point


def request(selection: dict, action: dict, reason: str = REASON, **extra) -> BulkRequest:
    return BulkRequest(selection=BulkSelection(**selection), action=BulkAction(**action),
                       reason=reason, **extra)


def run(policy: BulkRequest, **options: Any) -> tuple[Any, Any]:
    return run_flow(bulk_remediation, policy=policy, **options)


def group_with(workspace, status: str, low: int = 2, high: int = 6) -> str:
    """A detector group holding a few incidents of this status: a small, real selection."""
    counts = Counter(i["detector"]["detector_group_name"] for i in workspace.incidents
                     if i["status"] == status)
    return next(g for g, n in sorted(counts.items()) if low <= n <= high)


def notes_of(state: dict, incident_id: int) -> list[str]:
    return [n["comment"] for n in state["notes"].get(incident_id, [])]


def active_member(workspace, *, skip: set[str] = frozenset()) -> str:
    return next(m["email"].strip() for m in workspace.members
                if m.get("active", True) and m.get("access_level") in ("member", "manager")
                and m["email"].strip().casefold() not in skip)


# --------------------------------------------------------------------------- refusals


def test_unknown_filter_fails_before_any_request(use, sandbox, monkeypatch):
    use(sandbox)

    def no_client(**_):
        raise AssertionError("a client was built: a request could have been sent")

    monkeypatch.setattr("tasks.settings.gitguardian_client", no_client)
    policy = request({"api_filters": {"detector_name": "aws_iam"}}, {"kind": "note"})
    state, error = run(policy, dry_run=True)
    assert state.is_failed()
    assert isinstance(error, ValueError) and "detector_name" in str(error)


def test_an_unfiltered_selection_needs_confirm_all(use, sandbox, monkeypatch):
    use(sandbox)
    before = sandbox.state()
    policy = request({}, {"kind": "note"})
    built = []
    real = __import__("tasks.settings", fromlist=["gitguardian_client"]).gitguardian_client
    monkeypatch.setattr(
        "tasks.settings.gitguardian_client", lambda **kw: built.append(1) or real(**kw)
    )

    state, error = run(policy, dry_run=True)
    assert state.is_failed() and isinstance(error, RefusedRequest)
    assert "confirm_all" in str(error) and built == []

    # With the flag, a dry run plans the whole workspace and still writes nothing.
    state, result = run(policy.model_copy(update={"confirm_all": True}), dry_run=True)
    assert state.is_completed()
    assert result["counts"] == {"would_apply": len(sandbox.workspace.incidents)}
    assert sandbox.state() == before


def test_a_dry_run_writes_nothing(use, sandbox):
    use(sandbox)
    before = sandbox.state()
    group = group_with(sandbox.workspace, "TRIGGERED")
    policy = request(
        {"status": ["TRIGGERED"], "detector_group_name": group},
        {"kind": "ignore", "ignore_reason": "false_positive"},
    )
    state, result = run(policy)  # dry_run defaults to true for this flow
    assert state.is_completed() and result["dry_run"] is True
    assert result["plan"] and set(result["counts"]) == {"would_apply"}
    assert sandbox.state() == before


# --------------------------------------------------------------------------- each action


def _expect(action: dict, incident: dict, target: str | None) -> None:
    kind = action["kind"]
    if kind == "assign":
        assert incident["status"] == "ASSIGNED"
        assert incident["assignee_email"].strip().casefold() == target
    elif kind == "unassign":
        assert incident["status"] == "TRIGGERED" and not incident["assignee_email"]
    elif kind == "resolve":
        assert incident["status"] == "RESOLVED" and incident["secret_revoked"] is True
    elif kind == "ignore":
        assert incident["status"] == "IGNORED" and incident["ignore_reason"] == "false_positive"
    elif kind == "reopen":
        assert incident["status"] in ("TRIGGERED", "ASSIGNED")
    elif kind == "share":
        assert incident["share_url"]


ACTIONS = {
    "assign": ("TRIGGERED", {"kind": "assign"}),
    "unassign": ("ASSIGNED", {"kind": "unassign"}),
    "resolve": ("TRIGGERED", {"kind": "resolve", "secret_revoked": True}),
    "ignore": ("TRIGGERED", {"kind": "ignore", "ignore_reason": "false_positive"}),
    "reopen": ("RESOLVED", {"kind": "reopen"}),
    "share": ("TRIGGERED", {"kind": "share", "lifespan_hours": 24}),
    "note": ("IGNORED", {"kind": "note"}),
}


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_each_action_end_to_end_with_its_note(name, use, fresh_sandbox):
    use(fresh_sandbox)
    status, action = ACTIONS[name]
    action = dict(action)
    target = None
    if name == "assign":
        target = active_member(fresh_sandbox.workspace).strip().casefold()
        action["assignee_email"] = target
    group = group_with(fresh_sandbox.workspace, status)
    policy = request({"status": [status], "detector_group_name": group}, action)
    selected = sorted(
        i["id"]
        for i in fresh_sandbox.workspace.incidents
        if i["status"] == status and i["detector"]["detector_group_name"] == group
    )

    state, result = run(policy, dry_run=False)
    assert state.is_completed(), result
    assert sorted(o["incident_id"] for o in result["outcomes"]) == selected
    assert {o["result"] for o in result["outcomes"]} == {"applied"}
    after = fresh_sandbox.state()
    for row in result["plan"]:
        incident_id = row["incident_id"]
        _expect(action, after["incidents"][incident_id], target)
        notes = [n for n in notes_of(after, incident_id) if REASON in n]
        assert len(notes) == 1 and f"decision {row['decision_id']}" in notes[0]
    # Untouched: every incident outside the selection.
    before = {i["id"]: i for i in fresh_sandbox.workspace.incidents}
    for incident_id, incident in after["incidents"].items():
        if incident_id not in selected:
            assert incident["status"] == before[incident_id]["status"]
            assert not any(REASON in n for n in notes_of(after, incident_id))


def test_a_share_url_never_reaches_the_result_or_the_logs(use, fresh_sandbox, caplog):
    use(fresh_sandbox)
    group = group_with(fresh_sandbox.workspace, "TRIGGERED")
    policy = request({"status": ["TRIGGERED"], "detector_group_name": group}, {"kind": "share"})
    state, result = run(policy, dry_run=False)
    assert state.is_completed()
    urls = [s["share_url"] for s in fresh_sandbox.state()["shares"].values()]
    assert urls
    text = json.dumps(result) + caplog.text
    assert not any(url in text or url.rsplit("/", 1)[-1] in text for url in urls)


@pytest.mark.parametrize("name", ["resolve", "note"])
def test_a_rerun_acts_on_nothing_new(name, use, fresh_sandbox):
    use(fresh_sandbox)
    status, action = ACTIONS[name]
    group = group_with(fresh_sandbox.workspace, status)
    policy = request({"status": [status], "detector_group_name": group}, action)
    state, first = run(policy, dry_run=False)
    assert state.is_completed() and first["counts"].get("applied")
    after_first = fresh_sandbox.state()

    state, second = run(policy, dry_run=False)
    assert state.is_completed()
    assert "applied" not in second["counts"]
    assert fresh_sandbox.state()["notes"] == after_first["notes"]
    assert [i["status"] for i in fresh_sandbox.state()["incidents"].values()] == [
        i["status"] for i in after_first["incidents"].values()
    ]


def test_a_plan_over_max_actions_fails_before_any_write_outside_a_deployment(use, fresh_sandbox):
    use(fresh_sandbox)
    before = fresh_sandbox.state()
    group = group_with(fresh_sandbox.workspace, "TRIGGERED")
    policy = request({"status": ["TRIGGERED"], "detector_group_name": group}, {"kind": "resolve"})
    state, error = run(policy, dry_run=False, max_actions=1)
    assert state.is_failed() and "above this run's limit" in str(error)
    assert fresh_sandbox.state()["incidents"] == before["incidents"]
    assert fresh_sandbox.state()["notes"] == before["notes"]


# --------------------------------------------------------------------------- offboarding


def _directory_json(workspace, path: Path) -> Path:
    from sandbox.export import directory_entries

    entries = directory_entries(workspace)
    path.write_text(
        json.dumps({"entries": [{"dn": dn, "raw": raw} for dn, raw in entries]}), encoding="ascii"
    )
    return path


def _offboarding_people(workspace) -> tuple[str, str, str]:
    """(an assignee whose manager is an active member, that manager, an assignee without one)."""
    people = {p.email.strip().casefold(): p for p in workspace.people}
    by_dn = {p.dn.strip().casefold(): p for p in workspace.people}
    active = {m["email"].strip().casefold() for m in workspace.members if m.get("active", True)}
    assignees = Counter(
        i["assignee_email"].strip().casefold()
        for i in workspace.incidents
        if i["status"] == "ASSIGNED" and i["assignee_email"]
    )
    with_manager = without = manager = None
    for email, _ in sorted(assignees.items()):
        person = people.get(email)
        boss = by_dn.get((person.manager_dn or "").strip().casefold()) if person else None
        usable = boss is not None and not boss.departed and boss.email.strip().casefold() in active
        if usable and with_manager is None:
            with_manager, manager = email, boss.email.strip().casefold()
        elif person is not None and not usable and without is None:
            without = email
    assert with_manager and without
    return with_manager, manager, without


def test_offboarding_to_a_named_successor_without_a_directory(use, fresh_sandbox):
    use(fresh_sandbox)
    workspace = fresh_sandbox.workspace
    leaver, _, other = _offboarding_people(workspace)
    successor = active_member(workspace, skip={leaver, other})
    policy = request(
        {"status": ["TRIGGERED", "ASSIGNED"], "assignee_emails": [leaver, other]},
        {"kind": "assign", "to_manager": True, "assignee_email": successor},
    )
    state, result = run(policy, dry_run=False)
    assert state.is_completed(), result
    held = [
        i["id"]
        for i in workspace.incidents
        if i["status"] == "ASSIGNED"
        and (i["assignee_email"] or "").strip().casefold() in (leaver, other)
    ]
    assert sorted(r["incident_id"] for r in result["plan"]) == sorted(held)
    after = fresh_sandbox.state()["incidents"]
    assert {after[i]["assignee_email"].strip().casefold() for i in held} == {
        successor.strip().casefold()
    }


def test_offboarding_to_the_manager_from_the_directory(use, fresh_sandbox, monkeypatch, tmp_path):
    use(fresh_sandbox)
    workspace = fresh_sandbox.workspace
    monkeypatch.setenv(
        "DIRECTORY_JSON", str(_directory_json(workspace, tmp_path / "directory.json"))
    )
    leaver, manager, other = _offboarding_people(workspace)
    successor = active_member(workspace, skip={leaver, other, manager})
    policy = request(
        {"status": ["ASSIGNED"], "assignee_emails": [leaver, other]},
        {"kind": "assign", "to_manager": True, "assignee_email": successor},
    )
    state, result = run(policy, dry_run=False)
    assert state.is_completed(), result
    after = fresh_sandbox.state()["incidents"]
    for incident in workspace.incidents:
        if incident["status"] != "ASSIGNED":
            continue
        held_by = (incident["assignee_email"] or "").strip().casefold()
        if held_by == leaver:
            assert after[incident["id"]]["assignee_email"].strip().casefold() == manager
        elif held_by == other:
            assert (
                after[incident["id"]]["assignee_email"].strip().casefold()
                == successor.strip().casefold()
            )
    reasons = Counter(r["reason"] for r in result["plan"])
    assert reasons["bulk_assign_manager"] and reasons["bulk_assign_successor"]


# --------------------------------------------------------------------------- approval
# A plan above max_actions from a deployment: the run is suspended and asks for approval in a
# form (tests/deployments/test_approval.py, through a real server and serve process).


# --------------------------------------------------------------------------- CLI


def test_cli_help_lists_the_request_fields(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--selection",
        "--action",
        "--reason",
        "--confirm-all",
        "--apply",
        "--max-actions",
    ):
        assert option in out


def test_cli_dry_run_prints_the_plan(use, sandbox, capsys):
    use(sandbox)
    group = group_with(sandbox.workspace, "TRIGGERED")
    code = main(
        [
            "--selection",
            json.dumps({"status": ["TRIGGERED"], "detector_group_name": group}),
            "--action",
            '{"kind": "resolve"}',
            "--reason",
            "cli test",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "bulk-remediation dry run" in out and "would_apply" in out


def test_cli_refuses_a_blank_reason(capsys):
    code = main(
        [
            "--selection",
            '{"status": ["TRIGGERED"]}',
            "--action",
            '{"kind": "note"}',
            "--reason",
            "  ",
        ]
    )
    assert code == 2 and "blank" in capsys.readouterr().err
