"""The SLA escalation ladder's decide step (tasks/decide/sla_escalation.py): pure, exhaustive."""
from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clients.directory import Lookup, Person, Status
from tasks.decide import sla_escalation as ladder
from tasks.decide.evidence import Evidence
from tasks.decide.plan import Action
from tasks.sla import DEFAULT_SLA_DAYS

# A Wednesday, 10:00 UTC: working time in UTC and in Europe/Paris.
NOW = datetime(2026, 10, 21, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = ladder.SlaEscalationPolicy()


@dataclass(frozen=True)
class Inc:
    id: int
    severity: str = "high"
    date: datetime | None = NOW - 6 * DAY
    status: str = "ASSIGNED"
    assignee_email: str | None = "dev@corp.example"
    assignee_id: int | None = 1
    incident_name: str = "AWS Keys"
    gitguardian_url: str | None = "https://dashboard.gitguardian.com/workspace/1/incidents/1"


@dataclass(frozen=True)
class Member:
    id: int
    email: str
    active: bool = True


@dataclass(frozen=True)
class Occ:
    id: int
    author_info: str | None
    date: datetime | None = NOW - 3 * DAY
    author_name: str | None = None


def person(email: str, manager: str | None = None, departed: bool = False) -> Person:
    return Person(dn=f"uid={email.split('@')[0]},ou=people,dc=corp,dc=example", email=email,
                  manager_dn=f"uid={manager.split('@')[0]},ou=people,dc=corp,dc=example"
                  if manager else None, departed=departed)


def active(email: str, manager: str | None = None) -> Lookup:
    return Lookup(Status.ACTIVE, person(email, manager))


def departed(email: str) -> Lookup:
    return Lookup(Status.DEPARTED, person(email, departed=True))


ERROR = Lookup(Status.ERROR, detail="timed out")
MEMBERS = [Member(1, "dev@corp.example"), Member(2, "boss@corp.example"),
           Member(3, "author@corp.example"), Member(4, "vp@corp.example")]
DIRECTORY = {"dev@corp.example": active("dev@corp.example", "boss@corp.example"),
             "author@corp.example": active("author@corp.example", "boss@corp.example")}
MANAGERS = {"dev@corp.example": [active("boss@corp.example", "vp@corp.example"),
                                 active("vp@corp.example")],
            "author@corp.example": [active("boss@corp.example")]}


def decide(incidents, *, now=NOW, history=None, directory=DIRECTORY, managers=MANAGERS,
           members=MEMBERS, occurrences=None, noted=None, reopened=None, policy=POLICY):
    return ladder.decide_sla_escalation(
        incidents, now=now, history=history or {}, directory=directory, managers=managers,
        members=members, occurrences_by_incident=occurrences or {}, noted=noted,
        reopened=reopened, policy=policy)


def only(plan):
    assert len(plan.decisions) == 1, (plan.decisions, plan.skips)
    return plan.decisions[0]


def skip_reason(plan):
    assert not plan.decisions, plan.decisions
    assert len(plan.skips) == 1, plan.skips
    return plan.skips[0].reason


def done_history(plan, at=NOW):
    """The plan's decisions as the ledger gives them back once applied."""
    history: dict[int, list] = {}
    for d in plan.decisions:
        history.setdefault(d.incident_id, []).append(
            ladder.record_from_decision(d.incident_id, d.arguments, at))
    return history


# --- the rungs, by time --------------------------------------------------------------------------


@pytest.mark.parametrize("severity,age_days,rung", [
    ("high", 3.4, None), ("high", 3.5, "approaching_50"), ("high", 6.2, "approaching_50"),
    ("high", 6.3, "approaching_90"), ("high", 7.0, "approaching_90"),
    ("high", 7.01, "breached"), ("high", 10.0, "breached"), ("high", 10.01, "escalated"),
    ("critical", 0.4, None), ("critical", 0.5, "approaching_50"), ("critical", 1.5, "breached"),
    ("critical", 4.5, "escalated"), ("medium", 16, "approaching_50"), ("low", 92, "breached"),
    ("low", 100, "escalated"),
])
def test_the_rung_due_follows_the_shared_sla_table(severity, age_days, rung):
    plan = decide([Inc(1, severity=severity, date=NOW - age_days * DAY)])
    if rung is None:
        assert skip_reason(plan) == ladder.SKIP_NOT_DUE
    else:
        decision = only(plan)
        assert decision.reason == rung and decision.arguments["sla_stage"] == rung


@pytest.mark.parametrize("severity", ["info", "unknown", "brand-new"])
def test_no_sla_no_rung(severity):
    assert skip_reason(decide([Inc(1, severity=severity, date=NOW - 400 * DAY)])) == "no_sla"


def test_closed_incidents_are_not_looked_at():
    assert decide([Inc(1, status="RESOLVED", date=NOW - 90 * DAY)]) == ladder.Plan(
        ladder.PLAYBOOK)


# --- who is told -------------------------------------------------------------------------------


def test_stage_1_tells_the_assignee_with_a_note_whose_tag_reads_back():
    decision = only(decide([Inc(1, date=NOW - 5 * DAY)]))
    assert decision.action is Action.NOTE
    assert decision.arguments == {"sla_stage": "approaching_50", "cycle": 1,
                                  "assignee": "dev@corp.example", "notify": ["dev@corp.example"]}
    assert decision.precondition.before_note and decision.precondition.check_assignee
    note = ladder.render_note(decision)
    assert "dev@corp.example is told" in note and "2.0 days left of its 7-day SLA" in note
    [record] = ladder.records_from_note(1, note, NOW)
    assert (record.rung, record.cycle, record.assignee_after) == ("approaching_50", 1,
                                                                  "dev@corp.example")


def test_stage_1_unassigned_tells_the_most_recent_human_member_author():
    incident = Inc(1, status="TRIGGERED", assignee_email=None, assignee_id=None,
                   date=NOW - 5 * DAY)
    occurrences = {1: [Occ(10, "outsider@else.example", NOW - 4 * DAY),
                       Occ(11, "author@corp.example", NOW - 3 * DAY),
                       Occ(12, "ci-bot@corp.example", NOW - 2 * DAY)]}
    decision = only(decide([incident], occurrences=occurrences))
    assert decision.arguments["notify"] == ["author@corp.example"]
    assert decision.arguments["assignee"] is None
    # The most recent human author is not a member: nobody to tell.
    occurrences[1].append(Occ(13, "outsider@else.example", NOW - DAY))
    assert skip_reason(decide([incident], occurrences=occurrences)) == "no_recipient"
    # Their directory lookup failed: unknown, never the older author.
    occurrences[1][-1] = Occ(13, "who@corp.example", NOW - DAY)
    plan = decide([incident], occurrences=occurrences,
                  directory={**DIRECTORY, "who@corp.example": ERROR})
    assert skip_reason(plan) == "author_lookup_error"
    assert skip_reason(decide([incident])) == "no_recipient"


def test_stage_1_skips_a_departed_assignee_and_an_unreadable_directory():
    incident = Inc(1, date=NOW - 5 * DAY)
    plan = decide([incident], directory={"dev@corp.example": departed("dev@corp.example")})
    assert skip_reason(plan) == "assignee_departed"
    assert skip_reason(decide([incident], directory={"dev@corp.example": ERROR})) == \
        "directory_error"
    assert skip_reason(decide([incident], directory={})) == "directory_error"


def test_stage_2_tells_the_nearest_active_manager():
    decision = only(decide([Inc(1, date=NOW - 8 * DAY)]))
    assert decision.reason == "breached" and decision.arguments["notify"] == ["boss@corp.example"]
    assert decision.action is Action.NOTE
    # The manager left: the next one up.
    managers = {"dev@corp.example": [departed("boss@corp.example"), active("vp@corp.example")]}
    assert only(decide([Inc(1, date=NOW - 8 * DAY)], managers=managers)).arguments["notify"] == \
        ["vp@corp.example"]
    # Not beyond manager_depth.
    plan = decide([Inc(1, date=NOW - 8 * DAY)], managers=managers,
                  policy=ladder.SlaEscalationPolicy(manager_depth=1))
    assert skip_reason(plan) == "no_manager"


def test_stage_2_a_failed_manager_lookup_stops_the_walk():
    managers = {"dev@corp.example": [ERROR, active("vp@corp.example")]}
    plan = decide([Inc(1, date=NOW - 8 * DAY)], managers=managers)
    assert skip_reason(plan) == "manager_lookup_error"
    assert "timed out" in plan.skips[0].evidence
    assert skip_reason(decide([Inc(1, date=NOW - 8 * DAY)], managers={})) == "no_manager"
    unknown = {"dev@corp.example": Lookup(Status.UNKNOWN)}
    assert skip_reason(decide([Inc(1, date=NOW - 8 * DAY)], directory=unknown)) == "no_manager"


def test_stage_2_for_an_unassigned_incident_tells_the_authors_manager():
    incident = Inc(1, status="TRIGGERED", assignee_email=None, assignee_id=None,
                   date=NOW - 8 * DAY)
    decision = only(decide([incident], occurrences={1: [Occ(1, "author@corp.example")]}))
    assert decision.arguments["notify"] == ["boss@corp.example"]
    assert skip_reason(decide([incident])) == "no_manager"


def test_stage_2_reassigns_only_when_the_policy_says_so_and_the_manager_is_a_member():
    policy = ladder.SlaEscalationPolicy(reassign_to_manager=True, send_email=False)
    decision = only(decide([Inc(1, date=NOW - 8 * DAY)], policy=policy))
    assert decision.action is Action.ASSIGN
    assert decision.arguments["email"] == "boss@corp.example"
    assert decision.arguments["send_email"] is False
    assert "reassigned to them" in decision.evidence
    no_member = [m for m in MEMBERS if m.email != "boss@corp.example"]
    decision = only(decide([Inc(1, date=NOW - 8 * DAY)], policy=policy, members=no_member))
    assert decision.action is Action.NOTE and "not an active workspace member" in \
        decision.evidence


def test_stage_3_tells_security_whoever_holds_it():
    policy = ladder.SlaEscalationPolicy(security_lead_email="Lead@Corp.Example")
    decision = only(decide([Inc(1, date=NOW - 11 * DAY)], directory={}, policy=policy))
    assert decision.reason == "escalated" and decision.arguments["notify"] == ["security"]
    assert "lead@corp.example" in decision.evidence


# --- once per stage and cycle --------------------------------------------------------------------


def test_a_rung_done_is_never_repeated_and_the_next_one_comes_when_due():
    incident = Inc(1, date=NOW - 4 * DAY)
    first = decide([incident])
    history = done_history(first, NOW)
    assert skip_reason(decide([incident], history=history)) == "stage_done"
    later = NOW + 2 * DAY + 8 * timedelta(hours=1)  # 6.33 days: 90.5%, on Friday at 18:00
    assert only(decide([incident], now=later, history=history)).reason == "approaching_90"
    # Once breached, a rung lower than the one done is not due again.
    monday = NOW + 5 * DAY
    breached = decide([incident], now=monday, history=history)
    history2 = {1: history[1] + done_history(breached, monday)[1]}
    assert skip_reason(decide([incident], now=monday + DAY / 4, history=history2)) == \
        "stage_done"
    assert skip_reason(decide([incident], now=monday, history=history2,
                              policy=ladder.SlaEscalationPolicy(escalate_after_days=30))) == \
        "stage_done"


def test_a_reassignment_by_someone_else_or_a_reopen_starts_a_new_cycle():
    incident = Inc(1, date=NOW - 8 * DAY)
    history = done_history(decide([incident]), NOW - DAY / 2)
    assert skip_reason(decide([incident], history=history)) == "stage_done"
    moved = replace(incident, assignee_email="author@corp.example", assignee_id=3)
    decision = only(decide([moved], history=history))
    assert decision.arguments["cycle"] == 2 and "reassigned from dev@corp.example" in \
        decision.evidence
    reopened = only(decide([incident], history=history, reopened={1: NOW - DAY / 4}))
    assert reopened.arguments["cycle"] == 2 and "reopened" in reopened.evidence
    # A reopen before the rung was done changes nothing.
    assert skip_reason(decide([incident], history=history, reopened={1: NOW - DAY})) == \
        "stage_done"


def test_our_own_reassignment_to_the_manager_is_not_a_reset():
    policy = ladder.SlaEscalationPolicy(reassign_to_manager=True)
    incident = Inc(1, date=NOW - 8 * DAY)
    history = done_history(decide([incident], policy=policy), NOW - DAY / 2)
    now_theirs = replace(incident, assignee_email="boss@corp.example", assignee_id=2)
    assert skip_reason(decide([now_theirs], history=history, policy=policy)) == "stage_done"


def test_note_tags_count_as_done_and_unreadable_notes_stop_the_rung():
    incident = Inc(1, date=NOW - 8 * DAY)
    note = ladder.render_note(only(decide([incident])))
    records = ladder.records_from_note(1, note, NOW - DAY / 2)
    assert skip_reason(decide([incident], noted={1: Evidence.yes(records)})) == "stage_done"
    assert only(decide([incident], noted={1: Evidence.yes([])})).reason == "breached"
    unread = {1: ladder.unknown_notes("The notes listing failed (503).")}
    plan = decide([incident], noted=unread)
    assert skip_reason(plan) == "notes_lookup_error" and "503" in plan.skips[0].evidence
    assert skip_reason(decide([incident], noted={})) == "notes_lookup_error"


# --- quiet time ----------------------------------------------------------------------------------


@pytest.mark.parametrize("now,zone,quiet", [
    (datetime(2026, 10, 21, 10, 0, tzinfo=UTC), "UTC", False),
    (datetime(2026, 10, 21, 19, 0, tzinfo=UTC), "UTC", True),
    (datetime(2026, 10, 21, 7, 59, tzinfo=UTC), "UTC", True),
    (datetime(2026, 10, 21, 8, 0, tzinfo=UTC), "UTC", False),
    (datetime(2026, 10, 24, 12, 0, tzinfo=UTC), "UTC", True),  # Saturday
    (datetime(2026, 10, 25, 12, 0, tzinfo=UTC), "UTC", True),  # Sunday
    # 17:30 UTC is 19:30 in Paris (summer time until 25 October): quiet there.
    (datetime(2026, 10, 21, 17, 30, tzinfo=UTC), "Europe/Paris", True),
    (datetime(2026, 10, 21, 17, 30, tzinfo=UTC), "UTC", False),
    # Friday 23:30 UTC is Saturday in Tokyo.
    (datetime(2026, 10, 23, 15, 30, tzinfo=UTC), "Asia/Tokyo", True),
])
def test_quiet_hours_and_weekends_in_the_policys_zone(now, zone, quiet):
    policy = ladder.SlaEscalationPolicy(timezone=zone)
    plan = decide([Inc(1, date=now - 8 * DAY)], now=now, policy=policy)
    if quiet:
        assert skip_reason(plan) == "quiet_hours"
    else:
        assert only(plan).reason == "breached"


def test_quiet_hours_can_be_switched_off():
    policy = ladder.SlaEscalationPolicy(quiet_hours_start="00:00", quiet_hours_end="00:00",
                                        quiet_weekends=False)
    saturday_night = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
    assert only(decide([Inc(1, date=saturday_night - 8 * DAY)], now=saturday_night,
                       policy=policy)).reason == "breached"


# --- the policy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fields,message", [
    ({"approaching_at": [0.5, 1.0]}, "strictly between 0 and 1"),
    ({"approaching_at": [0.501, 0.499]}, "same percent"),
    ({"timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"quiet_hours_start": "25:00"}, "HH:MM"),
    ({"people_blocks": ["just-a-name"]}, "block-type/block-name"),
    ({"security_lead_email": "not an address"}, "single e-mail"),
    ({"escalate_after_days": 0}, "greater than 0"),
    ({"surprise": 1}, "Extra inputs"),
])
def test_the_policy_refuses_what_it_cannot_mean(fields, message):
    with pytest.raises(ValidationError, match=message):
        ladder.SlaEscalationPolicy(**fields)


def test_the_policy_sorts_thresholds_and_names_rungs():
    policy = ladder.SlaEscalationPolicy(approaching_at=[0.9, 0.25], people_blocks="slack-webhook/x")
    assert policy.approaching_at == (0.25, 0.9) and policy.people_blocks == ("slack-webhook/x",)
    assert policy.rungs == ("approaching_25", "approaching_90", "breached", "escalated")


# --- digests -------------------------------------------------------------------------------------


def test_one_digest_per_recipient_each_incident_once_no_share_links():
    incidents = {
        1: Inc(1, date=NOW - 5 * DAY),
        2: Inc(2, date=NOW - 9 * DAY, gitguardian_url="https://x.example/share/incidents/abc"),
        3: Inc(3, date=NOW - 6.5 * DAY, incident_name="<b>Stripe</b>"),
    }
    done = [("d1", 1, {"sla_stage": "approaching_50", "notify": ["dev@corp.example"]}),
            ("d3a", 3, {"sla_stage": "approaching_50", "notify": ["dev@corp.example"]}),
            ("d3b", 3, {"sla_stage": "approaching_90", "notify": ["dev@corp.example"]}),
            ("d2", 2, {"sla_stage": "breached", "notify": ["boss@corp.example"]}),
            ("d9", 9, {"sla_stage": "breached", "notify": ["boss@corp.example"]})]  # closed
    items = ladder.digest_items(done, incidents, NOW)
    digests = ladder.build_digests(items)
    assert [d.recipient for d in digests] == ["boss@corp.example", "dev@corp.example"]
    boss, dev = digests
    assert boss.decision_ids == ("d2",) and dev.decision_ids == ("d1", "d3a", "d3b")
    subject, body = ladder.render_digest(dev, POLICY)
    assert "2 incident(s)" in subject
    assert body.count("#3 ") == 1 and "0.5 days left" in body
    subject, body = ladder.render_digest(boss, POLICY)
    assert "late by 2.0 days (SLA 7 days)" in body and "/share/" not in body
    assert "1 past their SLA" in subject


def test_a_digest_lists_at_most_digest_max_items():
    incidents = {i: Inc(i, date=NOW - 9 * DAY) for i in range(1, 8)}
    done = [(f"d{i}", i, {"sla_stage": "breached", "notify": ["boss@corp.example"]})
            for i in incidents]
    [digest] = ladder.build_digests(ladder.digest_items(done, incidents, NOW))
    _, body = ladder.render_digest(digest, ladder.SlaEscalationPolicy(digest_max_items=5))
    assert body.count("\n- #") == 5 and "and 2 more" in body


# --- properties ----------------------------------------------------------------------------------

SEVERITIES = list(DEFAULT_SLA_DAYS) + ["odd"]
incident_st = st.builds(
    Inc,
    id=st.integers(1, 40),
    severity=st.sampled_from(SEVERITIES),
    date=st.integers(0, 200 * 24).map(lambda h: NOW - timedelta(hours=h)),
    status=st.sampled_from(["TRIGGERED", "ASSIGNED", "ASSIGNED", "RESOLVED"]),
    assignee_email=st.sampled_from([None, "dev@corp.example", "author@corp.example",
                                    "gone@corp.example"]),
)


def oracle_rung(incident, now, policy):
    """Written out again from the SLA table: the rung an incident is at, or None."""
    days = DEFAULT_SLA_DAYS.get(incident.severity)
    if days is None or incident.status not in ("TRIGGERED", "ASSIGNED"):
        return None
    hours = (now - incident.date).total_seconds() / 3600
    if hours > (days + policy.escalate_after_days) * 24:
        return "escalated"
    if hours > days * 24:
        return "breached"
    passed = [t for t in policy.approaching_at if hours >= t * days * 24]
    return f"approaching_{round(passed[-1] * 100)}" if passed else None


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(incidents=st.lists(incident_st, max_size=25), seed=st.integers(0, 1000))
def test_properties_of_any_workspace(incidents, seed):
    directory = {**DIRECTORY, "gone@corp.example": departed("gone@corp.example")}
    plan = decide(incidents, directory=directory)
    # One decision at most per incident, each the rung the SLA table says.
    ids = [d.incident_id for d in plan.decisions]
    assert len(ids) == len(set(ids))
    first = {}
    for incident in sorted(incidents, key=lambda i: (i.id, i.status, i.assignee_email or "",
                                                    str(i.date), i.severity)):
        first.setdefault(incident.id, incident)
    for decision in plan.decisions:
        assert decision.reason == oracle_rung(first[decision.incident_id], NOW, POLICY)
    # Every open incident is either planned or skipped, with a reason; closed ones neither.
    skipped = {s.incident_id for s in plan.skips}
    open_ids = {i.id for i in first.values() if i.status != "RESOLVED"}
    assert set(ids) | skipped == open_ids and not set(ids) & skipped
    # Any order gives the same plan.
    shuffled = list(incidents)
    random.Random(seed).shuffle(shuffled)
    assert decide(shuffled, directory=directory) == plan
    # Once applied, a re-run plans none of them again.
    again = decide(incidents, directory=directory, history=done_history(plan))
    assert not {d.incident_id for d in again.decisions} & set(ids)
    # Quiet time plans nothing.
    saturday = NOW + 3 * DAY
    assert not decide(incidents, directory=directory, now=saturday).decisions


def test_a_reopening_is_compared_with_our_notes_date_in_the_same_clock():
    incident = Inc(1, date=NOW - 8 * DAY)
    decision = only(decide([incident]))
    ledger_record = ladder.record_from_decision(1, decision.arguments, NOW)  # our clock: ahead
    [note_record] = ladder.records_from_note(1, ladder.render_note(decision), NOW - DAY)
    reopened = {1: NOW - DAY / 2}  # after the note (GitGuardian's clock), before our clock's time
    assert skip_reason(decide([incident], history={1: [ledger_record]}, reopened=reopened)) == \
        "stage_done"
    plan = decide([incident], history={1: [ledger_record, note_record]}, reopened=reopened)
    assert only(plan).arguments["cycle"] == 2
