"""The departed-developer successor chain: managers, CODEOWNERS owners, recent committers,
the fallback (tasks/decide/departed_successors.py; pure)."""
from __future__ import annotations

import pytest

from tasks.decide.departed_developers import (
    PLAYBOOK,
)
from tasks.decide.plan import Action, Precondition
from tests.decide.departed_factories import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    FRANK,
    Member,
    active,
    assigned,
    decide,
    departed,
    email,
    error,
    members_of,
    only_decision,
    only_skip,
    unknown,
)

# --- the successor chain ----------------------------------------------------------------------


def test_a_departed_assignee_goes_to_their_manager_who_is_an_active_member():
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE, markers=("leavers_ou", "employee_type"))},
        managers={email(ALICE): [active(BOB)]},
        members=members_of(BOB),
    )
    decision = only_decision(plan)
    assert plan.playbook == PLAYBOOK == decision.playbook
    assert decision.action is Action.ASSIGN
    assert decision.arguments == {"email": email(BOB), "send_email": True}
    assert decision.reason == "manager"
    assert email(ALICE) in decision.evidence and "leavers_ou, employee_type" in decision.evidence
    assert "the manager of" in decision.evidence
    assert decision.precondition == Precondition(
        statuses=("TRIGGERED", "ASSIGNED"), assignee_email=email(ALICE), check_assignee=True
    )
    assert plan.skips == ()


def test_a_manager_who_is_not_an_active_member_passes_it_to_the_next_level():
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [active(BOB), active(CAROL)]},
        members=members_of(CAROL, inactive=(BOB,)),
    )
    decision = only_decision(plan)
    assert decision.arguments["email"] == email(CAROL)
    assert decision.reason == "manager"
    assert "manager at level 2" in decision.evidence


def test_a_departed_or_unknown_manager_is_passed_over_even_when_still_a_member():
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [departed(BOB), unknown(), active(CAROL)]},
        members=members_of(BOB, CAROL),
        manager_depth=3,
    )
    assert only_decision(plan).arguments["email"] == email(CAROL)


def test_manager_depth_limits_how_far_up_the_chain_it_looks():
    world = dict(
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [active(BOB), active(CAROL)]},
        members=members_of(CAROL),  # only the level-2 manager is a member
    )
    assert only_decision(decide([assigned(1, ALICE)], **world, manager_depth=2))
    skip = only_skip(decide([assigned(1, ALICE)], **world, manager_depth=1))
    assert skip.reason == "no_successor"


def test_a_manager_matches_a_member_through_an_alias_and_the_api_spelling_is_kept():
    listed = "Bob.B@Corp.Example"  # the member list spells it its own way
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [active(BOB, aliases=("bob.b@corp.example",))]},
        members=[Member(7, listed)],
    )
    assert only_decision(plan).arguments["email"] == listed


def test_without_a_manager_the_first_codeowner_who_is_an_active_member_takes_it():
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE), email(CAROL): departed(CAROL),
                   email(DAVE): active(DAVE), email(ERIN): unknown(), email(FRANK): active(FRANK),
                   "outsider@else.example": unknown()},
        managers={email(ALICE): []},
        members=members_of(CAROL, ERIN, FRANK, inactive=(DAVE,)),
        codeowners={1: [email(ALICE), email(CAROL), email(DAVE), "outsider@else.example",
                        email(ERIN), email(FRANK)]},
    )
    decision = only_decision(plan)
    # Not the leaver, not a departed owner (whose account is still active), not an inactive
    # member, not a non-member, not an active member the directory does not know.
    assert decision.arguments["email"] == email(FRANK)
    assert decision.reason == "codeowner"
    assert "CODEOWNERS" in decision.evidence


@pytest.mark.parametrize(
    ("answer", "reason"),
    # A failed or missing answer is "could not tell", not "no": the chain stops at the owner
    # (issue 13; this test expected no_successor for all three before).
    [(None, "owner_lookup_error"), (unknown(), "no_successor"), (error(), "owner_lookup_error")],
    ids=["never asked", "unknown", "lookup failed"],
)
def test_an_owner_or_committer_the_directory_cannot_vouch_for_never_takes_over(answer, reason):
    directory = {email(ALICE): departed(ALICE)}
    if answer is not None:
        directory[email(ERIN)] = answer
    plan = decide([assigned(1, ALICE)], directory=directory, members=members_of(ERIN),
                  codeowners={1: [email(ERIN)]}, committers={1: [email(ERIN)]})
    assert only_skip(plan).reason == reason


def test_then_the_most_recent_committer_who_is_an_active_member_and_did_not_leave():
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE, aliases=("alice@old.example",)),
                   email(FRANK): active(FRANK), email(ERIN): active(ERIN)},
        members=[Member(1, "alice@old.example"), *members_of(ERIN, FRANK)],
        codeowners={1: ["ci-bot@corp.example"]},
        committers={1: ["ALICE@old.example", "noreply@corp.example", email(FRANK), email(ERIN)]},
    )
    decision = only_decision(plan)
    assert decision.arguments["email"] == email(FRANK)
    assert decision.reason == "recent_committer"


def test_a_committer_known_by_an_alias_takes_over_under_their_member_address():
    # The commit carries a short alias; the workspace account is under the primary address.
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE),
                   "f.foster@corp.example": active(FRANK, aliases=("f.foster@corp.example",)),
                   email(ERIN): departed(ERIN)},
        members=members_of(ERIN, FRANK),
        committers={1: [email(ERIN), "F.Foster@corp.example"]},
    )
    decision = only_decision(plan)
    assert decision.arguments["email"] == email(FRANK)
    assert decision.reason == "recent_committer"


def test_codeowners_and_committers_are_skipped_when_the_policy_turns_them_off():
    world = dict(
        directory={email(ALICE): departed(ALICE), email(CAROL): active(CAROL),
                   email(ERIN): active(ERIN)},
        members=members_of(CAROL, ERIN),
        codeowners={1: [email(CAROL)]},
        committers={1: [email(ERIN)]},
    )
    no_owners = decide([assigned(1, ALICE)], **world, use_codeowners=False)
    assert only_decision(no_owners).reason == "recent_committer"
    neither = decide([assigned(1, ALICE)], **world, use_codeowners=False,
                     use_recent_committers=False)
    assert only_skip(neither).reason == "no_successor"


def test_the_fallback_is_used_last_and_only_when_an_active_member():
    world = dict(
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [active(BOB)]},
        members=members_of(ERIN, inactive=(BOB, FRANK)),
    )
    decision = only_decision(
        decide([assigned(1, ALICE)], **world, fallback_email=" Erin.Evans@corp.example ")
    )
    assert decision.reason == "fallback"
    assert decision.arguments["email"] == email(ERIN)
    skip = only_skip(decide([assigned(1, ALICE)], **world, fallback_email=email(FRANK)))
    assert skip.reason == "no_successor"
    assert email(ALICE) in skip.evidence and "fallback" in skip.evidence


def test_the_fallback_is_never_the_person_who_left():
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE)},
        members=members_of(ALICE),  # still an active workspace member after leaving
        fallback_email=email(ALICE),
    )
    assert only_skip(plan).reason == "no_successor"


def test_send_email_follows_the_policy():
    plan = decide(
        [assigned(1, ALICE)],
        directory={email(ALICE): departed(ALICE)},
        managers={email(ALICE): [active(BOB)]},
        members=members_of(BOB),
        send_email=False,
    )
    assert only_decision(plan).arguments == {"email": email(BOB), "send_email": False}

