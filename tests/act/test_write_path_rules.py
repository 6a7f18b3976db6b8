"""The write path's pure rules: what counts as already done, when a precondition still holds,
the blast-radius check and the note marker. The full path runs against the sandbox in
tests/act/test_write_path.py."""
from types import SimpleNamespace

import pytest

from tasks.act import (
    BlastRadiusExceeded,
    as_decided,
    check_blast_radius,
    made_by,
    precondition_holds,
)
from tasks.decide.notes import marker, note_text
from tasks.decide.plan import Action, Decision, Plan, Precondition


def incident(status="ASSIGNED", email="old@corp.example", assignee_id=1, share_url=None,
             ignore_reason="test_credential", secret_revoked=True, **actors):
    fields = dict(ignorer_id=None, ignorer_api_token_id=None, resolver_id=None,
                  resolver_api_token_id=None)
    fields.update(actors)
    return SimpleNamespace(status=status, assignee_email=email, assignee_id=assignee_id,
                           share_url=share_url, ignore_reason=ignore_reason,
                           secret_revoked=secret_revoked, **fields)


def decision(action=Action.ASSIGN, args=None, pre=Precondition()):
    return Decision(
        "pb",
        7,
        action,
        args if args is not None else {"email": "New@Corp.Example "},
        "r",
        "ev",
        pre,
    )


@pytest.mark.parametrize(
    "action, args, current, done",
    [
        (Action.ASSIGN, {"email": "new@corp.example"}, incident(email=" NEW@corp.example"), True),
        (Action.ASSIGN, {"email": "new@corp.example"}, incident(email="old@corp.example"), False),
        (
            Action.ASSIGN,
            {"email": "new@corp.example"},
            incident(status="RESOLVED", email="new@corp.example"),
            False,
        ),
        (Action.ASSIGN, {"member_id": 5}, incident(email=None, assignee_id=5), True),
        (Action.UNASSIGN, {}, incident(status="TRIGGERED", email=None, assignee_id=None), True),
        (Action.UNASSIGN, {}, incident(), False),
        (Action.IGNORE, {"ignore_reason": "test_credential"}, incident(status="IGNORED"), True),
        (Action.IGNORE, {"ignore_reason": "test_credential"}, incident(status="RESOLVED"), False),
        # ignored, but for another reason (a person's false positive): not as decided
        (
            Action.IGNORE,
            {"ignore_reason": "test_credential"},
            incident(status="IGNORED", ignore_reason="false_positive"),
            False,
        ),
        (Action.RESOLVE, {"secret_revoked": True}, incident(status="RESOLVED"), True),
        (
            Action.RESOLVE,
            {"secret_revoked": True},
            incident(status="RESOLVED", secret_revoked=False),
            False,
        ),
        (Action.REOPEN, {}, incident(status="TRIGGERED"), True),
        (Action.REOPEN, {}, incident(status="IGNORED"), False),
        (Action.SHARE, {}, incident(share_url="x"), True),
        (Action.SHARE, {}, incident(), False),
        (Action.NOTE, {}, incident(), False),
    ],
)
def test_as_decided(action, args, current, done):
    assert as_decided(decision(action, args), current) is done


@pytest.mark.parametrize(
    "action, current, who",
    [
        (Action.IGNORE, incident(status="IGNORED", ignorer_api_token_id="ours"), "us"),
        (Action.IGNORE, incident(status="IGNORED", ignorer_api_token_id="theirs"), "other"),
        (Action.IGNORE, incident(status="IGNORED", ignorer_id=12), "other"),  # a person
        (Action.IGNORE, incident(status="IGNORED"), "unknown"),
        (Action.RESOLVE, incident(status="RESOLVED", resolver_api_token_id="ours"), "us"),
        (Action.RESOLVE, incident(status="RESOLVED", resolver_id=12), "other"),
        (Action.ASSIGN, incident(), "unknown"),  # the API does not say who assigned
    ],
)
def test_made_by_reads_the_actor_where_the_api_names_it(action, current, who):
    assert made_by(decision(action, {}), current, "ours") == who


def test_precondition_status_and_assignee():
    pre = Precondition(
        statuses=("ASSIGNED",), assignee_email="Old@corp.example", check_assignee=True
    )
    d = decision(pre=pre)
    assert precondition_holds(d, incident())
    assert not precondition_holds(
        d, incident(email="someone.else@corp.example")
    )  # a human reassigned it
    assert not precondition_holds(d, incident(status="RESOLVED"))
    assert precondition_holds(decision(pre=Precondition()), incident(status="IGNORED"))


def test_blast_radius_refuses_a_larger_plan_unless_approved():
    plan = Plan("pb", tuple(decision(args={"email": f"p{i}@corp.example"}) for i in range(3)))
    check_blast_radius(plan, 3)
    with pytest.raises(BlastRadiusExceeded, match="3 writes.*limit of 2"):
        check_blast_radius(plan, 2)
    check_blast_radius(plan, 2, approved=True)
    with pytest.raises(ValueError):
        check_blast_radius(plan, -1)


def test_note_carries_a_marker_unique_to_the_decision():
    a, b = decision(args={"email": "a@corp.example"}), decision(args={"email": "b@corp.example"})
    assert marker(a) != marker(b)
    assert (
        a.decision_id == decision(args={"email": "a@corp.example"}).decision_id
    )  # stable across runs
    assert note_text(a, "Reassigned.").endswith(marker(a))
    assert a.decision_id in marker(a) and "pb" in marker(a)
