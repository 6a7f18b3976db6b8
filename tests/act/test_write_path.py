"""The one write path against the live sandbox: re-check, already done, notes never twice,
a human change wins, one failure does not stop the others, the ledger's trail."""
from __future__ import annotations

from tasks.act import apply_plan
from tasks.decide.notes import marker
from tasks.decide.plan import Action, Decision, Plan, Precondition, Result


def _incident(box, status):
    return next(i for i in box.state()["incidents"].values() if i["status"] == status)


def _two_members(client):
    active = [m for m in client.members() if m.active and m.access_level != "restricted"]
    return active[0], active[1]


def _assign(incident, email, old=None):
    return Decision(
        "test",
        incident["id"],
        Action.ASSIGN,
        {"email": email, "send_email": False},
        "r",
        "Reassigned for the test.",
        Precondition(statuses=("TRIGGERED", "ASSIGNED"), assignee_email=old, check_assignee=True),
    )


def _ours(box, incident_id, decision):
    return [
        n for n in box.state()["notes"].get(incident_id, []) if marker(decision) in n["comment"]
    ]


def apply(world, decisions, dry_run=False):
    box, client, ledger, run_id = world
    report = apply_plan(
        Plan("test", tuple(decisions)),
        client=client,
        ledger=ledger,
        run_id=run_id,
        dry_run=dry_run,
        max_actions=100,
        token_id=client.token_info().id,
    )
    return report.outcomes


def test_dry_run_writes_nothing(world):
    box, client, *_ = world
    incident = _incident(box, "TRIGGERED")
    a, _ = _two_members(client)
    before = box.state()
    [outcome] = apply(world, [_assign(incident, a.email)], dry_run=True)
    assert outcome.result is Result.WOULD_APPLY
    assert box.state()["audit_logs"] == before["audit_logs"]


def test_applies_once_with_one_note_and_a_rerun_is_already_done(world):
    box, client, ledger, run_id = world
    incident = _incident(box, "TRIGGERED")
    a, _ = _two_members(client)
    decision = _assign(incident, a.email)
    [first] = apply(world, [decision])
    assert first.result is Result.APPLIED
    assert box.state()["incidents"][incident["id"]]["assignee_email"] == a.email
    [second] = apply(world, [decision])
    assert second.result is Result.ALREADY_DONE
    assert len(_ours(box, incident["id"], decision)) == 1
    assert len(ledger.intents(run_id)) == 2  # an intent per attempt, each with its result
    assert not ledger.interrupted()


def test_crash_between_the_write_and_its_note_is_completed_on_rerun(world):
    box, client, ledger, _ = world
    incident = _incident(box, "TRIGGERED")
    a, _ = _two_members(client)
    decision = _assign(incident, a.email)
    crashed = ledger.start_run("test", dry_run=False, parameters={})
    ledger.record_intent(crashed, decision)  # the intent, then the write landed, then it died
    client.assign(incident["id"], email=a.email)
    [outcome] = apply(world, [decision])
    assert outcome.result is Result.ALREADY_DONE
    assert len(_ours(box, incident["id"], decision)) == 1
    apply(world, [decision])
    assert len(_ours(box, incident["id"], decision)) == 1


def test_a_human_change_since_the_plan_wins(world):
    box, client, *_ = world
    incident = _incident(box, "ASSIGNED")
    a, b = _two_members(client)
    target = a if a.email != incident["assignee_email"] else b
    human = (
        next(m for m in (a, b) if m.email not in (target.email, incident["assignee_email"]))
        if len({a.email, b.email} - {incident["assignee_email"]}) > 1
        else None
    )
    decision = _assign(incident, target.email, old=incident["assignee_email"])
    if human is None:
        client.unassign(incident["id"])  # the human unassigned it instead
    else:
        client.assign(incident["id"], email=human.email)
    before = box.state()
    [outcome] = apply(world, [decision])
    assert outcome.result is Result.STATE_CHANGED
    assert box.state()["incidents"] == before["incidents"]
    assert not _ours(box, incident["id"], decision)


def test_one_failure_does_not_stop_the_others(world):
    box, client, ledger, run_id = world
    first, *_ = [i for i in box.state()["incidents"].values() if i["status"] == "TRIGGERED"]
    a, _ = _two_members(client)
    missing = dict(first, id=999_999_999)
    outcomes = apply(world, [_assign(missing, a.email), _assign(first, a.email)])
    assert [o.result for o in outcomes] == [Result.FAILED, Result.APPLIED]
    assert "404" in outcomes[0].detail or "Not found" in outcomes[0].detail
    assert box.token not in outcomes[0].detail
    assert not ledger.interrupted()


def test_ignore_and_reopen_round_trip(world):
    box, client, *_ = world
    incident = _incident(box, "TRIGGERED")
    ignore = Decision(
        "test",
        incident["id"],
        Action.IGNORE,
        {"ignore_reason": "test_credential"},
        "r",
        "e",
        Precondition(statuses=("TRIGGERED", "ASSIGNED")),
    )
    reopen = Decision(
        "test", incident["id"], Action.REOPEN, {}, "r", "e", Precondition(statuses=("IGNORED",))
    )
    assert [o.result for o in apply(world, [ignore])] == [Result.APPLIED]
    assert box.state()["incidents"][incident["id"]]["ignore_reason"] == "test_credential"
    assert [o.result for o in apply(world, [reopen])] == [Result.APPLIED]
    assert box.state()["incidents"][incident["id"]]["status"] in ("TRIGGERED", "ASSIGNED")
    # the ignore decision's precondition (open) holds again, but it is a new decision to apply
    assert [o.result for o in apply(world, [reopen])] == [Result.ALREADY_DONE]


def test_as_decided_by_someone_else_is_not_ours_and_gets_no_note(world):
    """The same assignment made by a person (no attempt of ours in the ledger) is theirs."""
    box, client, ledger, run_id = world
    incident = _incident(box, "TRIGGERED")
    a, _ = _two_members(client)
    decision = _assign(incident, a.email)
    client.assign(incident["id"], email=a.email)  # not through the write path: not ours
    [outcome] = apply(world, [decision])
    assert outcome.result is Result.STATE_CHANGED
    assert "no note" in outcome.detail
    assert not _ours(box, incident["id"], decision)
    assert not ledger.applied("test")


def _guarded_note(incident, seen_assignee, before_note=True):
    return Decision(
        "test",
        incident["id"],
        Action.NOTE,
        {"stage": "x"},
        "r",
        "A note that holds only while the incident is as planned.",
        Precondition(
            statuses=("TRIGGERED", "ASSIGNED"),
            assignee_email=seen_assignee,
            check_assignee=True,
            before_note=before_note,
        ),
    )


def test_a_note_with_before_note_is_written_only_while_its_precondition_holds(world):
    box, client, *_ = world
    incident = _incident(box, "ASSIGNED")
    held = _guarded_note(incident, incident["assignee_email"])
    [outcome] = apply(world, [held])
    assert outcome.result is Result.APPLIED and len(_ours(box, incident["id"], held)) == 1
    # Someone reassigned it since the plan saw it: no note (a plain note would be written).
    other = next(
        m
        for m in client.members()
        if m.active and m.email != incident["assignee_email"] and m.access_level != "restricted"
    )
    client.assign(incident["id"], email=other.email)
    stale = _guarded_note(incident, incident["assignee_email"])
    stale = Decision(**{**stale.__dict__, "arguments": {"stage": "y"}})
    [outcome] = apply(world, [stale])
    assert outcome.result is Result.STATE_CHANGED and "no note written" in outcome.detail
    assert not _ours(box, incident["id"], stale)
    plain = Decision(
        **{
            **stale.__dict__,
            "arguments": {"stage": "z"},
            "precondition": Precondition(
                statuses=("TRIGGERED", "ASSIGNED"),
                assignee_email=incident["assignee_email"],
                check_assignee=True,
            ),
        }
    )
    [outcome] = apply(world, [plain])
    assert outcome.result is Result.APPLIED
