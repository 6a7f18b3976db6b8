"""A person edits the incident in the dashboard while the write path works on it: the edit is
placed exactly between our read and our write (the sandbox's before/after hooks), and the
outcome must say what really happened: never `applied` or `already_done` alone, no false note,
and nothing a person did counted as ours."""
from __future__ import annotations

import time

import pytest

from tasks.act import apply_plan
from tasks.decide.notes import marker
from tasks.decide.plan import Action, Decision, Plan, Precondition, Result

OPEN = ("TRIGGERED", "ASSIGNED")




def apply(world, decisions, **options):
    box, client, ledger, run_id = world
    report = apply_plan(Plan("test", tuple(decisions)), client=client, ledger=ledger,
                        run_id=run_id, dry_run=False, max_actions=100,
                        token_id=client.token_info().id, **options)
    return report.outcomes


def _open_incident(box, status="TRIGGERED"):
    return next(i for i in box.state()["incidents"].values() if i["status"] == status)


def _members(box, client, *avoid):
    human = box.human.member["email"]
    return [m for m in client.members() if m.active and m.access_level != "restricted"
            and m.email not in (human, *avoid)]


def _ours(box, incident_id, decision):
    return [n for n in box.state()["notes"].get(incident_id, [])
            if marker(decision) in (n["comment"] or "")]


def _incident_path(incident_id):
    return rf"/v1/incidents/secrets/{incident_id}"


def _assign(incident, email):
    return Decision("test", incident["id"], Action.ASSIGN, {"email": email, "send_email": False},
                    "r", "Reassigned for the test.",
                    Precondition(statuses=OPEN, assignee_email=incident.get("assignee_email"),
                                 check_assignee=True))


def test_a_person_resolves_between_our_read_and_our_assign(world):
    box, client, ledger, _ = world
    incident = _open_incident(box)
    target = _members(box, client)[0]
    decision = _assign(incident, target.email)
    hook = box.after("GET", _incident_path(incident["id"]),
                     lambda b: b.human.resolve(incident["id"], secret_revoked=True))
    [outcome] = apply(world, [decision])
    assert hook.fired == 1
    assert outcome.result is Result.STATE_CHANGED, outcome
    assert "409" in outcome.detail and "RESOLVED" in outcome.detail
    assert not _ours(box, incident["id"], decision)  # no note claiming a reassignment
    assert box.state()["incidents"][incident["id"]]["status"] == "RESOLVED"
    assert not ledger.applied("test")


@pytest.mark.parametrize("restore", [False, True])
def test_a_person_reassigns_between_our_read_and_our_assign(world, restore):
    box, client, ledger, _ = world
    incident = _open_incident(box)
    ours, theirs = _members(box, client)[:2]
    decision = _assign(incident, ours.email)
    hook = box.after("GET", _incident_path(incident["id"]),
                     lambda b: b.human.assign(incident["id"], theirs.email))
    [outcome] = apply(world, [decision], restore_human_changes=restore)
    assert hook.fired == 1
    assert outcome.result is (Result.RESTORED_HUMAN_CHANGE if restore
                              else Result.OVERWROTE_HUMAN_CHANGE), outcome
    assert box.human.member["email"] in outcome.detail  # who changed it, and when
    assert str(theirs.id) in outcome.detail and ours.email in outcome.detail  # both values
    final = box.state()["incidents"][incident["id"]]["assignee_email"]
    assert final == (theirs.email if restore else ours.email)
    assert len(_ours(box, incident["id"], decision)) == (2 if restore else 1)


def test_a_person_ignores_as_false_positive_just_before_our_ignore(world):
    box, client, ledger, _ = world
    incident = _open_incident(box)
    decision = Decision("test", incident["id"], Action.IGNORE,
                        {"ignore_reason": "test_credential"}, "r", "Ignored as a test credential.",
                        Precondition(statuses=OPEN))
    box.after("GET", _incident_path(incident["id"]),
              lambda b: b.human.ignore(incident["id"], "false_positive"))
    [outcome] = apply(world, [decision])
    assert outcome.result is Result.STATE_CHANGED
    assert "false_positive" in outcome.detail and "a person" in outcome.detail
    assert not _ours(box, incident["id"], decision)
    assert not ledger.applied("test", action="ignore")  # so the recheck never reopens it


def test_a_persons_identical_ignore_is_not_taken_for_ours(world):
    box, client, ledger, _ = world
    incident = _open_incident(box)
    box.human.ignore(incident["id"], "test_credential")
    decision = Decision("test", incident["id"], Action.IGNORE,
                        {"ignore_reason": "test_credential"}, "r", "e", Precondition(statuses=OPEN))
    [outcome] = apply(world, [decision])
    assert outcome.result is Result.STATE_CHANGED and "someone else" in outcome.detail
    assert not _ours(box, incident["id"], decision)
    assert not ledger.applied("test")


def test_a_person_reassigning_right_before_our_write_is_caught_by_the_precondition(world):
    """The edit lands before our read: the read sees it, and nothing is written."""
    box, client, ledger, _ = world
    incident = _open_incident(box, "ASSIGNED")
    ours, theirs = _members(box, client, incident["assignee_email"])[:2]
    decision = _assign(incident, ours.email)
    box.before("GET", _incident_path(incident["id"]),
               lambda b: b.human.assign(incident["id"], theirs.email))
    [outcome] = apply(world, [decision])
    assert outcome.result is Result.STATE_CHANGED
    assert box.state()["incidents"][incident["id"]]["assignee_email"] == theirs.email
    assert not _ours(box, incident["id"], decision)


def test_our_own_resolve_met_again_is_already_done(world):
    """A 409 whose re-read shows our token made the incident as decided is ours."""
    box, client, ledger, _ = world
    incident = _open_incident(box)
    decision = Decision("test", incident["id"], Action.RESOLVE, {"secret_revoked": True}, "r", "e",
                        Precondition(statuses=OPEN))
    # Our own earlier write (e.g. a retry whose first try landed) meets us on the way.
    box.after("GET", _incident_path(incident["id"]),
              lambda b: client.resolve(incident["id"], secret_revoked=True))
    [outcome] = apply(world, [decision])
    assert outcome.result is Result.ALREADY_DONE and "409" in outcome.detail
    assert len(_ours(box, incident["id"], decision)) == 1


# -- the batched safety read: one listing per chunk, its guarantees unchanged ------------------

def _plan_time(client, box, count=6):
    """Open incidents as a playbook's fetch saw them, and assign decisions for them."""
    seen = list(client.incidents(status="TRIGGERED", per_page=100))  # all the fetch saw
    # Incidents close in time, so their window's listing is short: the newest ones.
    chosen = sorted(seen, key=lambda i: i.date)[-count:]
    target = _members(box, client)[0]
    decisions = [_assign({"id": i.id, "assignee_email": None}, target.email) for i in chosen]
    return seen, decisions, target


def test_the_safety_reads_of_a_chunk_are_one_listing(world):
    box, client, ledger, _ = world
    incidents, decisions, target = _plan_time(client, box)
    before = dict(client.request_counts)
    outcomes = apply(world, decisions, incidents=incidents)
    assert [o.result for o in outcomes] == [Result.APPLIED] * len(decisions)
    spent = {k: v - before.get(k, 0) for k, v in client.request_counts.items()}
    assert spent.get("GET /v1/incidents/secrets", 0) == 1  # the chunk's listing
    assert not any(k.startswith("GET /v1/incidents/secrets/") and "notes" not in k
                   for k in spent if spent[k])  # no read one by one


def test_a_change_after_the_plan_and_before_the_chunks_read_is_caught(world):
    """The read belongs to the chunk, not to the plan: a person's edit made in between is
    seen, and the precondition stops our write."""
    box, client, ledger, _ = world
    incidents, decisions, target = _plan_time(client, box)
    other = _members(box, client, target.email)[0]
    victim = decisions[2].incident_id
    hook = box.before("GET", r"/v1/incidents/secrets",
                      lambda b: b.human.assign(victim, other.email))
    outcomes = apply(world, decisions, incidents=incidents)
    assert hook.fired == 1
    by_id = {o.decision.incident_id: o for o in outcomes}
    assert by_id[victim].result is Result.STATE_CHANGED
    assert box.state()["incidents"][victim]["assignee_email"] == other.email
    assert all(o.result is Result.APPLIED for i, o in by_id.items() if i != victim)


def test_a_change_after_the_chunks_read_is_still_detected_after_the_write(world):
    box, client, ledger, _ = world
    incidents, decisions, target = _plan_time(client, box)
    other = _members(box, client, target.email)[0]
    victim = decisions[3].incident_id
    box.after("GET", r"/v1/incidents/secrets", lambda b: b.human.assign(victim, other.email))
    outcomes = apply(world, decisions, incidents=incidents)
    by_id = {o.decision.incident_id: o for o in outcomes}
    assert by_id[victim].result is Result.OVERWROTE_HUMAN_CHANGE, by_id[victim]
    assert all(o.result is Result.APPLIED for i, o in by_id.items() if i != victim)


def test_a_stale_batch_is_read_again(world):
    """A state older than max_read_age is never used: the rest of the chunk is listed anew."""
    box, client, ledger, _ = world
    incidents, decisions, target = _plan_time(client, box, count=4)
    before = client.request_counts.get("GET /v1/incidents/secrets", 0)
    outcomes = apply(world, decisions, incidents=incidents, max_read_age=0.0, workers=1)
    assert all(o.result is Result.APPLIED for o in outcomes)
    listings = client.request_counts.get("GET /v1/incidents/secrets", 0) - before
    assert listings >= 2  # listed again once the first listing aged past the limit


def test_a_failed_batched_read_falls_back_to_one_read_each(world):
    box, client, ledger, _ = world
    incidents, decisions, target = _plan_time(client, box, count=4)
    box.respond("GET", r"/v1/incidents/secrets", 400, '{"detail": "Bad filter."}')
    outcomes = apply(world, decisions, incidents=incidents)
    assert [o.result for o in outcomes] == [Result.APPLIED] * 4
    assert client.request_counts.get("GET /v1/incidents/secrets/{id}", 0) >= 4


# -- a scoped run's own read as the safety read (issue 16: requests per event) ------------------

def _scoped_read(box, client):
    """One open incident read as a scoped run reads it (a GET), with the time taken before."""
    read_at = time.monotonic()
    incident = client.incident(_open_incident(box)["id"], with_occurrences=100)
    return incident.model_copy(update={"occurrences": None}), read_at


def test_a_fresh_scoped_read_is_the_safety_read(world):
    box, client, ledger, _ = world
    incident, read_at = _scoped_read(box, client)
    decision = _assign({"id": incident.id, "assignee_email": None}, _members(box, client)[0].email)
    before = dict(client.request_counts)
    [outcome] = apply(world, [decision], incidents=[incident], read_at=read_at)
    assert outcome.result is Result.APPLIED, outcome
    spent = {k: v - before.get(k, 0) for k, v in client.request_counts.items()
             if v > before.get(k, 0) and k != "GET /v1/api_tokens/self"}  # the helper's own
    # The assign, its note, the after-write audit-log check: no second read of the incident.
    assert spent == {"POST /v1/incidents/secrets/{id}/assign": 1,
                     "POST /v1/incidents/secrets/{id}/notes": 1, "GET /v1/audit_logs": 1}, spent


def test_a_scoped_read_older_than_the_limit_is_read_again(world):
    box, client, ledger, _ = world
    incident, read_at = _scoped_read(box, client)
    decision = _assign({"id": incident.id, "assignee_email": None}, _members(box, client)[0].email)
    before = client.request_counts.get("GET /v1/incidents/secrets/{id}", 0)
    [outcome] = apply(world, [decision], incidents=[incident], read_at=read_at - 11.0)
    assert outcome.result is Result.APPLIED, outcome
    assert client.request_counts.get("GET /v1/incidents/secrets/{id}", 0) == before + 1


def test_a_change_after_a_scoped_read_is_caught_by_the_after_write_check(world):
    """A person reassigns between the run's own read and our write: the write lands (as it
    would after any safety read), and the audit log says so; nothing a person did is ours."""
    box, client, ledger, _ = world
    incident, read_at = _scoped_read(box, client)
    ours, theirs = _members(box, client)[:2]
    box.human.assign(incident.id, theirs.email)
    decision = _assign({"id": incident.id, "assignee_email": None}, ours.email)
    [outcome] = apply(world, [decision], incidents=[incident], read_at=read_at)
    assert outcome.result is Result.OVERWROTE_HUMAN_CHANGE, outcome
    assert box.human.member["email"] in outcome.detail


def test_a_scoped_read_closed_since_is_seen_by_the_409(world):
    """A person resolved it after our read: the write's 409 makes it state_changed, no note."""
    box, client, ledger, _ = world
    incident, read_at = _scoped_read(box, client)
    box.human.resolve(incident.id, secret_revoked=True)
    decision = _assign({"id": incident.id, "assignee_email": None}, _members(box, client)[0].email)
    [outcome] = apply(world, [decision], incidents=[incident], read_at=read_at)
    assert outcome.result is Result.STATE_CHANGED, outcome
    assert not _ours(box, incident.id, decision)
    assert box.state()["incidents"][incident.id]["status"] == "RESOLVED"
