"""The departed-developer decide: who left, and what is left alone (pure; who takes over:
test_departed_successors.py)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clients.directory import Lookup, Status
from tasks.decide.departed_developers import (
    DEFAULT_NOTE_TEMPLATE,
    DepartedDevelopersPolicy,
    decide_departed_developers,
    render_note,
)
from tasks.decide.identity import is_bot_or_noreply, normalise_email
from tasks.decide.plan import Action
from tests.decide.departed_factories import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    Incident,
    Member,
    active,
    assigned,
    decide,
    departed,
    email,
    error,
    members_of,
    occurrence,
    only_decision,
    only_skip,
    triggered,
    unknown,
)

# --- what is never a departure ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("lookup", "reason"),
    [(unknown(), "assignee_unknown"), (error(), "directory_error"), (None, "directory_error")],
    ids=["unknown", "error", "missing"],
)
def test_an_assignee_the_directory_cannot_vouch_for_is_skipped_not_reassigned(lookup, reason):
    directory = {email(ALICE): lookup} if lookup is not None else {}
    skip = only_skip(decide(
        [assigned(1, ALICE)],
        directory=directory,
        managers={email(ALICE): [active(BOB)]},
        members=members_of(BOB),
        fallback_email=email(BOB),
    ))
    assert (skip.incident_id, skip.reason) == (1, reason)
    assert email(ALICE) in skip.evidence


@pytest.mark.parametrize("address", ["dependabot[bot]@users.noreply.github.com",
                                     "noreply@corp.example", "ci-runner@corp.example"])
def test_a_bot_or_no_reply_assignee_is_skipped_even_if_the_directory_says_departed(address):
    incident = Incident(1, "ASSIGNED", assignee_email=address, assignee_id=9)
    skip = only_skip(decide(
        [incident],
        directory={normalise_email(address): departed(ALICE)},
        members=members_of(BOB),
        fallback_email=email(BOB),
    ))
    assert skip.reason == "assignee_bot"


def test_an_assigned_incident_without_an_assignee_e_mail_is_skipped_as_unknown():
    incident = Incident(1, "ASSIGNED", assignee_email=None, assignee_id=9)
    assert only_skip(decide([incident], members=members_of(BOB),
                            fallback_email=email(BOB))).reason == "assignee_unknown"


def test_active_assignees_and_closed_incidents_are_neither_planned_nor_skipped():
    plan = decide(
        [assigned(1, BOB), Incident(2, "RESOLVED", assignee_email=email(ALICE)),
         Incident(3, "IGNORED", assignee_email=email(ALICE))],
        directory={email(BOB): active(BOB), email(ALICE): departed(ALICE)},
        members=members_of(CAROL),
        fallback_email=email(CAROL),
    )
    assert plan.decisions == () and plan.skips == ()


def test_addresses_compare_normalised():
    plan = decide(
        [Incident(1, "ASSIGNED", assignee_email="  Alice.Adams@CORP.example ", assignee_id=3)],
        directory={"ALICE.ADAMS@corp.example": departed(ALICE)},
        managers={email(ALICE).upper(): [active(BOB)]},
        members=members_of(BOB),
    )
    decision = only_decision(plan)
    assert decision.arguments["email"] == email(BOB)
    # The precondition keeps the address as the API listed it; the write path normalises.
    assert decision.precondition.assignee_email == "  Alice.Adams@CORP.example "


# --- unassigned incidents whose authors all left ----------------------------------------------


def test_unassigned_incidents_are_only_looked_at_when_the_policy_asks():
    world = dict(
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [active(BOB)]},
        members=members_of(BOB),
        occurrences={1: [occurrence(10, 1, email(ALICE))]},
    )
    assert decide([triggered(1, occurrences_count=1)], **world).decisions == ()
    decision = only_decision(decide([triggered(1, occurrences_count=1)], **world,
                                    include_unassigned=True))
    assert decision.arguments["email"] == email(BOB)
    assert decision.precondition.assignee_email is None
    assert decision.precondition.check_assignee is True
    assert "unassigned" in decision.evidence


def test_unassigned_needs_every_human_author_departed_and_ignores_bots():
    directory = {email(ALICE): departed(ALICE), email(CAROL): departed(CAROL),
                 email(DAVE): active(DAVE)}
    occurrences = {
        # Carol committed last, Alice before; a bot too: the bot does not count.
        1: [occurrence(10, 1, email(ALICE), days=1), occurrence(11, 1, email(CAROL), days=5),
            occurrence(12, 1, "build@corp.example", author_name="deploy[bot]", days=9)],
        2: [occurrence(20, 2, email(ALICE)), occurrence(21, 2, email(DAVE))],  # Dave is here
        3: [occurrence(30, 3, "dependabot[bot]@users.noreply.github.com")],  # bots only
    }
    plan = decide(
        [triggered(1, occurrences_count=3), triggered(2, occurrences_count=2),
         triggered(3, occurrences_count=1)],
        directory=directory,
        managers={email(ALICE): [active(BOB)], email(CAROL): [active(ERIN)]},
        members=members_of(BOB, ERIN),
        occurrences=occurrences,
        include_unassigned=True,
    )
    decision = only_decision(plan)
    assert decision.incident_id == 1
    # The most recent author's manager comes first.
    assert decision.arguments["email"] == email(ERIN)
    assert email(ALICE) in decision.evidence and email(CAROL) in decision.evidence
    assert plan.skips == ()


@pytest.mark.parametrize(
    ("other", "reason"),
    [(unknown(), "author_unknown"), (error(), "directory_error"), (None, "directory_error")],
    ids=["unknown", "error", "missing"],
)
def test_unassigned_with_an_author_the_directory_cannot_vouch_for_is_skipped(other, reason):
    directory = {email(ALICE): departed(ALICE)}
    if other is not None:
        directory[email(DAVE)] = other
    plan = decide(
        [triggered(1)],
        directory=directory,
        members=members_of(BOB),
        occurrences={1: [occurrence(10, 1, email(ALICE)), occurrence(11, 1, email(DAVE))]},
        fallback_email=email(BOB),
        include_unassigned=True,
    )
    assert only_skip(plan).reason == reason


def test_unassigned_with_unseen_occurrences_is_not_claimed():
    plan = decide(
        [triggered(1, occurrences_count=3)],
        directory={email(ALICE): departed(ALICE)},
        members=members_of(BOB),
        occurrences={1: [occurrence(10, 1, email(ALICE))]},
        fallback_email=email(BOB),
        include_unassigned=True,
    )
    skip = only_skip(plan)
    assert skip.reason == "occurrences_unseen"
    assert skip.evidence.startswith("1 of 3 occurrences returned")


def test_unassigned_with_a_null_occurrences_count_is_not_claimed():
    # Issue 13: a null occurrences_count was read as "all seen" and the incident reassigned.
    plan = decide(
        [triggered(1, occurrences_count=None)],
        directory={email(ALICE): departed(ALICE)},
        members=members_of(BOB),
        occurrences={1: [occurrence(10, 1, email(ALICE))]},
        fallback_email=email(BOB),
        include_unassigned=True,
    )
    skip = only_skip(plan)
    assert skip.reason == "occurrences_count_unknown"
    assert "no occurrences_count" in skip.evidence


def test_an_unassigned_incident_never_goes_to_one_of_its_departed_authors():
    plan = decide(
        [triggered(1, occurrences_count=2)],
        directory={email(ALICE): departed(ALICE), email(CAROL): departed(CAROL)},
        managers={email(ALICE): [active(CAROL)]},  # a stale chain naming the other leaver
        members=members_of(ALICE, CAROL),
        occurrences={1: [occurrence(10, 1, email(ALICE)), occurrence(11, 1, email(CAROL))]},
        codeowners={1: [email(CAROL), email(ALICE)]},
        include_unassigned=True,
    )
    assert only_skip(plan).reason == "no_successor"


# --- plan shape -------------------------------------------------------------------------------


def test_the_plan_is_sorted_by_incident_and_holds_each_incident_once():
    world = dict(
        directory={email(ALICE): departed(ALICE), email(DAVE): unknown()},
        managers={email(ALICE): [active(BOB)]},
        members=members_of(BOB),
    )
    incidents = [assigned(5, ALICE), assigned(2, DAVE), assigned(3, ALICE), assigned(5, ALICE)]
    plan = decide(incidents, **world)
    assert [d.incident_id for d in plan.decisions] == [3, 5]
    assert [s.incident_id for s in plan.skips] == [2]
    assert decide(list(reversed(incidents)), **world) == plan


def test_a_member_listed_twice_resolves_the_same_whatever_the_member_order():
    members = [Member(9, "Bob.Brown@Corp.Example"), Member(4, email(BOB)),
               Member(2, email(BOB).upper(), active=False)]
    world = dict(
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [active(BOB)]},
    )
    forward = decide([assigned(1, ALICE)], members=members, **world)
    backward = decide([assigned(1, ALICE)], members=list(reversed(members)), **world)
    # The lowest id among the active listings wins.
    assert only_decision(forward).arguments["email"] == email(BOB)
    assert backward == forward


def test_it_works_on_the_client_models_too():
    models = pytest.importorskip("clients.models")
    incident = models.Incident.model_validate({
        "id": 42, "detector": {"name": "generic_password"}, "date": "2026-01-01T00:00:00Z",
        "status": "ASSIGNED", "assignee_id": 3, "assignee_email": email(ALICE),
        "occurrences_count": 1,
    })
    unassigned = incident.model_copy(update={"id": 43, "status": "TRIGGERED",
                                             "assignee_id": None, "assignee_email": None})
    found = models.Occurrence.model_validate({
        "id": 9, "incident_id": 43, "date": "2026-01-02T00:00:00Z", "filepath": "a.py",
        "author_info": email(ALICE), "author_name": "Alice",
        "source": {"id": 1, "full_name": "acme/x"},
    })
    member = models.Member.model_validate({"id": 8, "email": email(BOB), "active": True,
                                           "access_level": "member"})
    plan = decide([incident, unassigned], directory={email(ALICE): departed(ALICE)},
                  managers={email(ALICE): [active(BOB)]}, members=[member],
                  occurrences={43: [found]}, include_unassigned=True)
    assert [(d.incident_id, d.arguments["email"]) for d in plan.decisions] == [
        (42, email(BOB)), (43, email(BOB))]


# --- policy and note --------------------------------------------------------------------------


def test_policy_defaults_and_bounds():
    policy = DepartedDevelopersPolicy()
    assert (policy.include_unassigned, policy.manager_depth, policy.use_codeowners,
            policy.use_recent_committers, policy.fallback_email, policy.send_email) == (
        False, 2, True, True, None, True)
    assert policy.note_template == DEFAULT_NOTE_TEMPLATE
    for depth in (0, 6):
        with pytest.raises(ValidationError):
            DepartedDevelopersPolicy(manager_depth=depth)
    assert DepartedDevelopersPolicy(fallback_email="  ").fallback_email is None
    with pytest.raises(ValidationError):
        DepartedDevelopersPolicy(fallback_email="not an address")
    # Every field is described: the policy is the Prefect UI form.
    assert all(f.description for f in DepartedDevelopersPolicy.model_fields.values())


@pytest.mark.parametrize("template", [
    "from {old} to {someone}", "{0}", "{}", "{old.__class__}", "{new[0]}", "{old", "to {new!x}",
    "{old:>{reason}}",
])
def test_note_templates_with_unknown_placeholders_are_rejected(template):
    with pytest.raises(ValidationError):
        DepartedDevelopersPolicy(note_template=template)


def test_render_note_fills_old_new_and_reason():
    world = dict(
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [active(BOB)]},
        members=members_of(BOB),
        occurrences={2: [occurrence(10, 2, email(ALICE))]},
        include_unassigned=True,
    )
    plan = decide([assigned(1, ALICE), triggered(2, occurrences_count=1)], **world)
    policy = DepartedDevelopersPolicy(note_template="{old} -> {new} {{because}} {reason}")
    first, second = plan.decisions
    assert render_note(first, policy) == (
        f"{email(ALICE)} -> {email(BOB)} {{because}} {first.evidence}")
    assert render_note(second, policy).startswith(
        f"nobody (every commit author left) -> {email(BOB)}"
    )
    default = render_note(first, DepartedDevelopersPolicy())
    assert email(ALICE) in default and email(BOB) in default and "[gg-remediation" not in default


# --- properties -------------------------------------------------------------------------------

NAMES = [f"p{i}.person" for i in range(8)]
ODD_ADDRESSES = ["ci-bot@corp.example", "noreply@corp.example", "stranger@else.example",
                 "dependabot[bot]@users.noreply.github.com"]
ADDRESSES = [email(n) for n in NAMES] + ODD_ADDRESSES
# Weighted towards the two statuses that lead to decisions; the other three still come often.
STATUSES = ["active", "active", "departed", "departed", "departed", "unknown", "error", "missing"]
PEOPLE_FIRST = [email(n) for n in NAMES] * 3 + ODD_ADDRESSES


def _lookup(kind: str, name: str) -> Lookup | None:
    return {"active": lambda: active(name), "departed": lambda: departed(name),
            "unknown": unknown, "error": error, "missing": lambda: None}[kind]()


@st.composite
def worlds(draw):
    kinds = {n: draw(st.sampled_from(STATUSES)) for n in NAMES}
    directory = {email(n): lk for n in NAMES if (lk := _lookup(kinds[n], n)) is not None}
    # A person may still be in the directory map for a manager under any status.
    managers = {
        email(n): [active(m) if draw(st.booleans()) else departed(m)
                   for m in draw(st.lists(st.sampled_from(NAMES), max_size=4))]
        for n in NAMES if kinds[n] == "departed"
    }
    # Members: most people (sometimes spelled in capitals by the API), some inactive, some not
    # members at all; and a few odd addresses, so that every unsafe successor is on offer.
    members = []
    for member_id, listed in enumerate(ADDRESSES):
        kind = draw(st.sampled_from(["active", "active", "inactive", "absent"]))
        if kind != "absent":
            spelled = listed.upper() if draw(st.booleans()) else listed
            members.append(Member(member_id, spelled, active=kind == "active"))
    # The same person listed twice, spelled differently: which one is picked must not depend on
    # the order of the member list.
    for extra_id, listed in enumerate(draw(st.lists(st.sampled_from(ADDRESSES), max_size=3))):
        members.append(Member(100 + extra_id, listed.title(), active=draw(st.booleans())))
    ids = draw(st.lists(st.integers(1, 40), min_size=1, max_size=12, unique=True))
    incidents, occurrences, owners, committers = [], {}, {}, {}
    for incident_id in ids:
        status = draw(st.sampled_from(["ASSIGNED", "TRIGGERED", "RESOLVED"]))
        who = draw(st.sampled_from(PEOPLE_FIRST)) if status != "TRIGGERED" else None
        incidents.append(Incident(incident_id, status, assignee_email=who,
                                  assignee_id=7 if who else None))
        authors = draw(st.lists(st.sampled_from(PEOPLE_FIRST), max_size=3))
        occurrences[incident_id] = [occurrence(incident_id * 10 + k, incident_id, a, days=k)
                                    for k, a in enumerate(authors)]
        owners[incident_id] = draw(st.lists(st.sampled_from(ADDRESSES), max_size=3))
        committers[incident_id] = draw(st.lists(st.sampled_from(ADDRESSES), max_size=3))
    policy = DepartedDevelopersPolicy(
        include_unassigned=draw(st.booleans()),
        manager_depth=draw(st.integers(1, 5)),
        use_codeowners=draw(st.booleans()),
        use_recent_committers=draw(st.booleans()),
        fallback_email=draw(st.none() | st.sampled_from(ADDRESSES)),
    )
    return dict(incidents=incidents, directory=directory, managers=managers, members=members,
                occurrences_by_incident=occurrences, codeowners=owners,
                recent_committers=committers, policy=policy)


def _plan(world):
    return decide_departed_developers(
        world["incidents"],
        **{k: v for k, v in world.items() if k != "incidents"},
    )


@settings(max_examples=250, deadline=None)
@given(worlds())
def test_property_only_departed_people_lose_incidents_and_only_to_safe_successors(world):
    plan = _plan(world)
    directory = world["directory"]
    by_id = {i.id: i for i in world["incidents"]}
    active_members = {normalise_email(m.email) for m in world["members"] if m.active}

    def is_departed(address):
        lookup = directory.get(normalise_email(address))
        return lookup is not None and lookup.status is Status.DEPARTED

    assert len({d.incident_id for d in plan.decisions}) == len(plan.decisions)
    for decision in plan.decisions:
        incident = by_id[decision.incident_id]
        new = normalise_email(decision.arguments["email"])
        assert decision.action is Action.ASSIGN and incident.status in ("TRIGGERED", "ASSIGNED")
        if incident.assignee_email:
            # Never on an unknown, failed or missing answer, a bot or a no-reply address.
            assert is_departed(incident.assignee_email)
            assert not is_bot_or_noreply(incident.assignee_email)
            assert new != normalise_email(incident.assignee_email)
        else:
            assert world["policy"].include_unassigned
            humans = [o.author_info for o in world["occurrences_by_incident"][incident.id]
                      if not is_bot_or_noreply(o.author_info, o.author_name)]
            assert humans and all(is_departed(a) for a in humans)
            assert new not in {normalise_email(a) for a in humans}
        assert decision.precondition.assignee_email == incident.assignee_email
        assert decision.precondition.check_assignee
        # Never to an inactive member, a non-member, a departed person or a bot.
        assert new in active_members
        assert not is_departed(new)
        assert not is_bot_or_noreply(new)
        if decision.reason in ("codeowner", "recent_committer"):
            # A name found in a repository: the directory vouches for them as still here.
            assert any(
                lookup.status is Status.ACTIVE
                and lookup.person is not None
                and new
                in {normalise_email(a) for a in (lookup.person.email, *lookup.person.aliases)}
                for lookup in directory.values()
            )


@settings(max_examples=150, deadline=None)
@given(worlds(), st.randoms(use_true_random=False))
def test_property_the_plan_does_not_depend_on_input_order(world, random):
    shuffled = dict(world)
    for key in ("incidents", "members"):
        shuffled[key] = random.sample(world[key], len(world[key]))
    shuffled["occurrences_by_incident"] = {
        k: random.sample(v, len(v)) for k, v in reversed(world["occurrences_by_incident"].items())
    }
    entries = list(world["directory"].items())
    shuffled["directory"] = dict(random.sample(entries, len(entries)))
    assert _plan(shuffled) == _plan(world)
