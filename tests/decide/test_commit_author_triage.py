"""Commit-author triage: resolution of authors, each fallback and skip reason, the optional
share, and properties (never a non-member, inactive member, bot or departed person)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clients.directory import Status
from tasks.decide.commit_author_triage import (
    PLAYBOOK,
    CommitAuthorTriagePolicy,
    decide_commit_author_triage,
)
from tasks.decide.identity import is_bot_or_noreply, normalise_email
from tasks.decide.plan import Action, Precondition
from tests.fixtures.factories import (
    active,
    by_incident,
    departed,
    error,
    incident,
    member,
    occurrence,
    unknown,
)

DEV = member(1, "Dev.One@corp.example")
DEV2 = member(2, "dev.two@corp.example")
GONE = member(3, "gone.person@corp.example")  # still a workspace member, but left the company
IDLE = member(4, "idle.person@corp.example", active=False)
BOT = member(5, "ci-bot@corp.example", name="ci-bot")
SEC_A = member(6, "sec.a@corp.example")
SEC_B = member(7, "sec.b@corp.example")
MEMBERS = [DEV, DEV2, GONE, IDLE, BOT, SEC_A, SEC_B]
EXT = "ext.dev@partner.example"  # a human the directory does not know, not a member
DIRECTORY = {
    "dev.one@corp.example": active("dev.one@corp.example", "d.one@corp.example"),
    "d.one@corp.example": active("dev.one@corp.example", "d.one@corp.example"),
    "gone.person@corp.example": departed("gone.person@corp.example"),
    "sec.a@corp.example": active("sec.a@corp.example"),
    EXT: unknown(),
}


def written_by(author, **fields):
    """Incident 1's occurrences: one, by this author."""
    return by_incident(occurrence(1, author=author, **fields))


def triage(incidents, occurrences, policy=CommitAuthorTriagePolicy(), *, members=MEMBERS,
           directory=DIRECTORY, mailmap=None, **kwargs):
    return decide_commit_author_triage(
        incidents, occurrences, members, directory, mailmap or {}, policy, **kwargs
    )


def only_assign(plan):
    assert plan.skips == ()
    (decision,) = plan.decisions
    assert decision.action is Action.ASSIGN
    return decision


def only_skip(plan):
    assert plan.decisions == ()
    (skip,) = plan.skips
    return skip


# -- policy ------------------------------------------------------------------------------------
def test_policy_defaults():
    policy = CommitAuthorTriagePolicy()
    assert policy.no_member_author == "leave"
    assert policy.group_emails == ()
    assert policy.send_email is True
    assert policy.share_with_non_member_author is False
    assert policy.share_auto_healing is False
    assert policy.share_feedback_collection is True
    assert policy.share_lifespan_hours == 0


def test_policy_validation():
    with pytest.raises(ValidationError, match="needs group_emails"):
        CommitAuthorTriagePolicy(no_member_author="least_loaded")
    with pytest.raises(ValidationError):
        CommitAuthorTriagePolicy(no_member_author="random")
    with pytest.raises(ValidationError, match="not e-mail"):
        CommitAuthorTriagePolicy(group_emails=["security-team"])
    with pytest.raises(ValidationError):
        CommitAuthorTriagePolicy(share_lifespan_hours=-1)
    policy = CommitAuthorTriagePolicy(
        no_member_author="least_loaded", group_emails=[" Sec.A@corp.example ", "sec.a@corp.example"]
    )
    assert policy.group_emails == ("sec.a@corp.example",)
    schema = CommitAuthorTriagePolicy.model_json_schema()
    assert all(field.get("description") for field in schema["properties"].values())


# -- commit author -----------------------------------------------------------------------------
def test_assigns_the_member_author_matched_normalised():
    plan = triage([incident(1)], by_incident(occurrence(1, author="  DEV.one@CORP.example ")))
    decision = only_assign(plan)
    assert plan.playbook == PLAYBOOK == "commit-author-triage"
    assert decision.arguments == {"email": "Dev.One@corp.example", "send_email": True}  # as listed
    assert decision.reason == "commit_author"
    assert decision.precondition == Precondition(statuses=("TRIGGERED",))
    assert "occurrence 1" in decision.evidence


def test_send_email_comes_from_the_policy():
    plan = triage(
        [incident(1)], by_incident(occurrence(1)), CommitAuthorTriagePolicy(send_email=False)
    )
    assert only_assign(plan).arguments["send_email"] is False


def test_substring_is_not_a_match():
    plan = triage([incident(1)], written_by("ev.one@corp.example"))
    assert only_skip(plan).reason == "no_member_author"
    plan = triage([incident(1)], written_by("dev.one@corp.example.evil"))
    assert only_skip(plan).reason == "no_member_author"


def test_mailmap_then_directory_alias():
    mailmap = {"Dev@Laptop.local": "D.One@corp.example"}
    plan = triage([incident(1)], written_by("dev@laptop.local"), mailmap=mailmap)
    decision = only_assign(plan)
    assert decision.arguments["email"] == DEV.email
    assert ".mailmap" in decision.evidence and "directory alias" in decision.evidence


def test_most_recent_member_author_wins_ties_by_occurrence_id():
    occ = by_incident(
        occurrence(1, author=DEV.email, days=1),
        occurrence(2, author=DEV2.email, days=5),
        occurrence(3, author=EXT, days=9),  # newest, but not a member
    )
    decision = only_assign(triage([incident(1, occurrences_count=3)], occ))
    assert decision.arguments["email"] == DEV2.email
    occ = by_incident(
        occurrence(8, author=DEV.email, days=5), occurrence(9, author=DEV2.email, days=5)
    )
    decision = only_assign(triage([incident(1, occurrences_count=2)], occ))
    assert decision.arguments["email"] == DEV2.email


def test_never_an_inactive_member_a_bot_or_a_departed_person():
    for author, name in [
        (IDLE.email, "Idle"),
        (BOT.email, "ci-bot"),
        ("49699333+dependabot[bot]@users.noreply.github.com", "dependabot[bot]"),
        ("noreply@corp.example", "No Reply"),
        (GONE.email, "Gone"),
    ]:
        plan = triage([incident(1)], by_incident(occurrence(1, author=author, author_name=name)))
        assert plan.decisions == (), author


def test_departed_author_is_left_to_the_departed_playbook_whatever_the_fallback():
    policy = CommitAuthorTriagePolicy(no_member_author="least_loaded", group_emails=[SEC_A.email])
    plan = triage([incident(1)], written_by(GONE.email), policy)
    assert only_skip(plan).reason == "author_departed"


def test_departed_by_alias_or_through_the_mailmap():
    old_name = "old.name@corp.example"
    directory = {**DIRECTORY, old_name: departed(old_name, DEV2.email)}
    plan = triage([incident(1)], written_by(DEV2.email), directory=directory)
    assert only_skip(plan).reason == "author_departed"
    # The commit address is a leaver's, even if the mailmap maps it to an active member.
    plan = triage(
        [incident(1)], written_by(GONE.email), mailmap={GONE.email: DEV.email}
    )
    assert plan.decisions == ()


def test_unknown_or_failed_lookups_are_not_departures():
    directory = {**DIRECTORY, DEV2.email: unknown()}
    plan = triage([incident(1)], written_by(DEV2.email), directory=directory)
    assert only_assign(plan).arguments["email"] == DEV2.email
    # A failed lookup is not a departure either, nor a go-ahead: the author may have left
    # (issue 13; this test expected the assignment before).
    directory = {**DIRECTORY, DEV2.email: error()}
    plan = triage([incident(1)], written_by(DEV2.email), directory=directory)
    assert only_skip(plan).reason == "author_lookup_error"


# -- skips -------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["ASSIGNED", "RESOLVED", "IGNORED"])
def test_not_triggered(status):
    skip = only_skip(triage([incident(1, status=status)], by_incident(occurrence(1))))
    assert (skip.reason, skip.evidence) == ("not_triggered", f"status is {status}")


def test_already_assigned():
    plan = triage([incident(1, assignee_email=DEV.email)], by_incident(occurrence(1)))
    assert only_skip(plan).reason == "already_assigned"


def test_no_member_author_left_by_default():
    skip = only_skip(triage([incident(1)], written_by(EXT)))
    assert skip.reason == "no_member_author" and EXT in skip.evidence
    skip = only_skip(triage([incident(1)], {}))
    assert skip.reason == "no_member_author" and "No occurrence seen" in skip.evidence


def test_untrusted_author_text_is_escaped_in_evidence():
    skip = only_skip(triage([incident(1)], written_by("x\x1b[2J@evil.example")))
    assert "\x1b" not in skip.evidence and "\\x1b" in skip.evidence


# -- fallbacks ---------------------------------------------------------------------------------
CODEOWNERS_POLICY = CommitAuthorTriagePolicy(no_member_author="codeowners")


def test_codeowners_first_eligible_owner():
    ineligible = ["nobody@corp.example", GONE.email, IDLE.email, BOT.email]
    owners = {1: [*ineligible, " DEV.TWO@corp.example", DEV.email]}
    plan = triage([incident(1)], written_by(EXT),
                  CODEOWNERS_POLICY, codeowners=owners)
    decision = only_assign(plan)
    assert (decision.reason, decision.arguments["email"]) == ("codeowner", DEV2.email)


def test_codeowners_none_eligible():
    plan = triage([incident(1)], written_by(EXT),
                  CODEOWNERS_POLICY, codeowners={1: [GONE.email]})
    assert only_skip(plan).reason == "no_eligible_codeowner"
    plan = triage([incident(1)], written_by(EXT), CODEOWNERS_POLICY)
    assert only_skip(plan).reason == "no_eligible_codeowner"


def test_fallbacks_need_every_occurrence_seen():
    plan = triage([incident(1, occurrences_count=2)], written_by(EXT),
                  CODEOWNERS_POLICY, codeowners={1: [DEV.email]})
    assert only_skip(plan).reason == "occurrences_unseen"


def test_a_member_author_beats_the_fallback():
    occ = by_incident(occurrence(1))
    plan = triage([incident(1)], occ, CODEOWNERS_POLICY, codeowners={1: [DEV2.email]})
    assert only_assign(plan).reason == "commit_author"


def test_least_loaded_spreads_the_work_and_breaks_ties_by_email():
    group = [SEC_B.email, SEC_A.email, IDLE.email, GONE.email, "x@corp.example"]
    policy = CommitAuthorTriagePolicy(no_member_author="least_loaded", group_emails=group)
    incidents = [incident(i) for i in (1, 2, 3, 4)]
    occ = by_incident(*(occurrence(i, i, author=EXT) for i in (1, 2, 3, 4)))
    plan = triage(incidents, occ, policy, open_counts={SEC_A.id: 1, SEC_B.id: 0, IDLE.id: 0})
    assert [(d.incident_id, d.arguments["email"], d.reason) for d in plan.decisions] == [
        (1, SEC_B.email, "least_loaded"),  # 0 vs 1
        (2, SEC_A.email, "least_loaded"),  # 1 vs 1: tie, by e-mail
        (3, SEC_B.email, "least_loaded"),  # 2 vs 2
        (4, SEC_A.email, "least_loaded"),
    ]


def test_least_loaded_counts_commit_author_assignments_of_this_run():
    policy = CommitAuthorTriagePolicy(
        no_member_author="least_loaded", group_emails=[SEC_A.email, SEC_B.email]
    )
    occ = by_incident(occurrence(1, 1, author=SEC_A.email), occurrence(2, 2, author=EXT))
    plan = triage([incident(1), incident(2)], occ, policy)
    assert [d.arguments["email"] for d in plan.decisions] == [SEC_A.email, SEC_B.email]


def test_least_loaded_without_eligible_group_member():
    policy = CommitAuthorTriagePolicy(
        no_member_author="least_loaded", group_emails=[IDLE.email, GONE.email]
    )
    plan = triage([incident(1)], written_by(EXT), policy)
    assert only_skip(plan).reason == "no_eligible_group_member"


# -- share -------------------------------------------------------------------------------------
SHARE = CommitAuthorTriagePolicy(
    share_with_non_member_author=True, share_auto_healing=True, share_lifespan_hours=72
)


def test_share_with_a_non_member_author():
    plan = triage([incident(1)], written_by(EXT), SHARE)
    (share,) = plan.decisions
    assert share.action is Action.SHARE
    assert share.arguments == {
        "auto_healing": True, "feedback_collection": True, "lifespan_hours": 72
    }
    assert share.reason == "non_member_author"
    assert "http" not in share.evidence.lower() and "://" not in share.evidence
    assert [s.reason for s in plan.skips] == ["no_member_author"]  # the assignment is still left


def test_share_goes_with_a_fallback_assignment():
    policy = SHARE.model_copy(update={"no_member_author": "codeowners"})
    plan = triage([incident(1)], written_by(EXT), policy,
                  codeowners={1: [DEV.email]})
    assert [(d.action, d.reason) for d in plan.decisions] == [
        (Action.ASSIGN, "codeowner"), (Action.SHARE, "non_member_author")
    ]


@pytest.mark.parametrize(
    "author", [DEV.email, GONE.email, "dependabot[bot]@users.noreply.github.com"]
)
def test_no_share_with_a_member_a_leaver_or_a_bot(author):
    plan = triage([incident(1)], written_by(author), SHARE)
    assert all(d.action is not Action.SHARE for d in plan.decisions)


def test_no_share_by_default_or_when_already_shared():
    occ = written_by(EXT)
    assert triage([incident(1)], occ).decisions == ()
    shared = incident(1).model_copy(update={"share_url": "https://share.invalid/placeholder"})
    assert triage([shared], occ, SHARE).decisions == ()


# -- properties --------------------------------------------------------------------------------
ADDRESSES = [
    "dev.one@corp.example", "DEV.ONE@corp.example", "d.one@corp.example", "dev.two@corp.example",
    "gone.person@corp.example", "idle.person@corp.example", "ci-bot@corp.example",
    "ext.dev@partner.example", "noreply@corp.example", "renovate[bot]@users.noreply.github.com",
    "sec.a@corp.example", "sec.b@corp.example", "laptop@local", "",
]
PEOPLE = ADDRESSES[:-1]
# Strategies built once: building them inside the draw costs more than the draws themselves.
A_PERSON = st.sampled_from(PEOPLE)
AN_AUTHOR = st.sampled_from(ADDRESSES)
SOME_PEOPLE = st.lists(A_PERSON, max_size=8)
LOOKUP_KIND = st.sampled_from(["active", "departed", "unknown", "error"])
ALIASES = st.lists(A_PERSON, max_size=2)
MEMBER_NAME = st.sampled_from([None, "Someone", "x[bot]"])
STATUS = st.sampled_from(["TRIGGERED", "TRIGGERED", "ASSIGNED", "RESOLVED"])
POLICIES = st.builds(
    CommitAuthorTriagePolicy,
    no_member_author=st.sampled_from(["leave", "codeowners", "least_loaded"]),
    group_emails=st.lists(A_PERSON, min_size=1, max_size=3),
    share_with_non_member_author=st.booleans(),
)


def draw_lookup(draw):
    kind = draw(LOOKUP_KIND)
    if kind == "unknown":
        return unknown()
    if kind == "error":
        return error()
    return (active if kind == "active" else departed)(draw(A_PERSON), *draw(ALIASES))


@st.composite
def worlds(draw):
    members = [
        member(i, email, active=draw(st.booleans()), name=draw(MEMBER_NAME))
        for i, email in enumerate(draw(SOME_PEOPLE), start=1)
    ]
    directory = {normalise_email(a): draw_lookup(draw) for a in draw(SOME_PEOPLE)}
    mailmap = {normalise_email(a): draw(A_PERSON) for a in draw(st.lists(A_PERSON, max_size=3))}
    incidents, grouped, next_id = [], {}, 1
    for incident_id in range(1, draw(st.integers(1, 5)) + 1):
        occs = []
        for _ in range(draw(st.integers(0, 4))):
            author, days = draw(AN_AUTHOR), draw(st.integers(0, 3))
            occs.append(occurrence(next_id, incident_id, author=author, days=days))
            next_id += 1
        grouped[incident_id] = occs
        incidents.append(incident(
            incident_id, status=draw(STATUS), occurrences_count=len(occs) + draw(st.integers(0, 1)),
        ))
    codeowners = {i.id: draw(st.lists(A_PERSON, max_size=3)) for i in incidents}
    open_counts = {m.id: draw(st.integers(0, 3)) for m in members}
    return incidents, grouped, members, directory, mailmap, draw(POLICIES), codeowners, open_counts


def departed_addresses(directory):
    found = set()
    for key, lookup in directory.items():
        if lookup.status is Status.DEPARTED:
            found |= {key, lookup.person.email, *lookup.person.aliases}
    return found


@settings(max_examples=200, deadline=None)
@given(world=worlds())
def test_never_assigns_a_non_member_an_inactive_member_a_bot_or_a_departed_person(world):
    incidents, grouped, members, directory, mailmap, policy, codeowners, open_counts = world
    plan = decide_commit_author_triage(incidents, grouped, members, directory, mailmap, policy,
                         codeowners=codeowners, open_counts=open_counts)
    gone = departed_addresses(directory)
    statuses = {i.id: i.status for i in incidents}
    for decision in plan.decisions:
        if decision.action is Action.SHARE:
            assert set(decision.arguments) == {
                "auto_healing", "feedback_collection", "lifespan_hours"
            }
            continue
        assert decision.action is Action.ASSIGN
        assert statuses[decision.incident_id] == "TRIGGERED"
        email = decision.arguments["email"]
        chosen = [m for m in members if m.email == email]
        assert chosen and any(m.active is True for m in chosen)  # listed, as the API lists it
        eligible = [
            m for m in chosen if m.active is True and not is_bot_or_noreply(m.email, m.name)
        ]
        assert eligible, "a bot or inactive member was chosen"
        assert normalise_email(email) not in gone


@settings(max_examples=200, deadline=None)
@given(world=worlds(), seed=st.integers(0, 2**16))
def test_triage_is_deterministic_and_order_free(world, seed):
    incidents, grouped, members, directory, mailmap, policy, codeowners, open_counts = world
    args = dict(codeowners=codeowners, open_counts=open_counts)
    first = decide_commit_author_triage(
        incidents, grouped, members, directory, mailmap, policy, **args
    )
    assert decide_commit_author_triage(
        incidents, grouped, members, directory, mailmap, policy, **args
    ) == first
    rng = random.Random(seed)
    again = decide_commit_author_triage(
        rng.sample(incidents, len(incidents)),
        {k: rng.sample(v, len(v)) for k, v in grouped.items()},
        rng.sample(members, len(members)),
        dict(rng.sample(sorted(directory.items()), len(directory))),
        dict(rng.sample(sorted(mailmap.items()), len(mailmap))),
        policy, **args,
    )
    assert again == first  # same decisions, skips and evidence, whatever the input order


def test_a_bot_committing_with_a_member_address_is_still_a_bot():
    plan = triage([incident(1)], written_by(DEV.email, author_name="release[bot]"))
    assert only_skip(plan).reason == "no_member_author"


def test_no_share_for_an_incident_left_to_the_departed_playbook():
    occ = by_incident(occurrence(1, author=EXT, days=2), occurrence(2, author=GONE.email))
    plan = triage([incident(1, occurrences_count=2)], occ, SHARE)
    assert plan.decisions == ()
    assert [s.reason for s in plan.skips] == ["author_departed"]


def test_notes_name_the_assignee_and_never_hold_a_link():
    from tasks.decide.commit_author_triage import render_note

    assign, share = triage(
        [incident(1)], written_by(EXT), SHARE.model_copy(update={"no_member_author": "codeowners"}),
        codeowners={1: [DEV.email]},
    ).decisions
    assert render_note(assign).startswith(f"Assigned to {DEV.email}")
    assert "://" not in render_note(share) and EXT in render_note(share)
