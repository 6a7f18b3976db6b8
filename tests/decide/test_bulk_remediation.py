"""The bulk request models, their refusals and the pure decision
(tasks/decide/bulk_remediation.py; the selection: test_bulk_selection.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tasks.decide.bulk_remediation import (
    PLAYBOOK,
    SKIP_ALREADY_DONE,
    SKIP_NO_SUCCESSOR,
    SKIP_NOT_APPLICABLE,
    BulkAction,
    BulkRequest,
    BulkSelection,
    RefusedRequest,
    check_dates_exclude,
    check_request,
    decide_bulk_remediation,
    render_note,
)
from tasks.decide.plan import Action
from tests.decide.bulk_factories import NOW, request
from tests.decide.factories import incident, member, occurrence

# --------------------------------------------------------------------------- models


def test_reason_is_mandatory_and_never_blank():
    with pytest.raises(ValidationError, match="reason"):
        BulkRequest(action={"kind": "note"})
    with pytest.raises(ValidationError, match="blank"):
        BulkRequest(action={"kind": "note"}, reason="   \n ")
    assert BulkRequest(action={"kind": "note"}, reason="  why  ").reason == "why"


def test_a_blank_reason_that_skipped_validation_is_still_refused():
    forged = BulkRequest.model_construct(
        selection=BulkSelection(status=["TRIGGERED"]), action=BulkAction(kind="note"), reason=" "
    )
    with pytest.raises(RefusedRequest, match="blank"):
        check_request(forged)


@pytest.mark.parametrize(
    "action, message",
    [
        ({"kind": "assign"}, "assign needs"),
        ({"kind": "ignore"}, "ignore_reason"),
        ({"kind": "resolve", "ignore_reason": "low_risk"}, "only goes with ignore"),
        ({"kind": "note", "assignee_email": "a@corp.example"}, "only go with assign"),
        ({"kind": "assign", "assignee_email": "not-an-address"}, "not an e-mail"),
        ({"kind": "delete"}, "kind"),
        ({"kind": "ignore", "ignore_reason": "because"}, "ignore_reason"),
        ({"kind": "note", "colour": "red"}, "colour"),
    ],
)
def test_an_action_without_its_arguments_is_refused(action, message):
    with pytest.raises(ValidationError, match=message):
        BulkAction(**action)


def test_selection_rejects_unknown_fields_and_useless_globs():
    with pytest.raises(ValidationError, match="detector_name"):
        BulkSelection(detector_name="aws_iam")
    with pytest.raises(ValidationError, match="every path"):
        BulkSelection(path_globs=["**"])
    with pytest.raises(ValidationError, match="own field"):
        BulkSelection(api_filters={"status": "TRIGGERED"})
    with pytest.raises(ValidationError, match="nothing could match"):
        BulkSelection(min_age_days=10, max_age_days=5)


@pytest.mark.parametrize(
    "selection, unfiltered",
    [
        ({}, True),
        ({"status": ["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"]}, True),
        ({"validity": ["valid", "invalid", "failed_to_check", "no_checker", "unknown"]}, True),
        ({"status": ["TRIGGERED"]}, False),
        ({"detector_group_name": "aws_iam"}, False),
        ({"api_filters": {"tags": ["TEST_FILE"]}}, False),
        ({"path_globs": ["**/tests/**"]}, False),
        ({"author_emails": ["a@corp.example"]}, False),
        ({"source_names": ["acme/x"]}, False),
        ({"risk_score_min": 0, "risk_score_max": 100, "min_age_days": 0}, True),
        ({"risk_score_min": 1}, False),
        ({"min_age_days": 1}, False),
        ({"max_age_days": 1000}, False),
    ],
)
def test_an_unfiltered_selection_needs_confirm_all(selection, unfiltered):
    bulk = request(**selection)
    assert bulk.selection.is_unfiltered() is unfiltered
    if unfiltered:
        with pytest.raises(RefusedRequest, match="confirm_all"):
            check_request(bulk)
        check_request(bulk.model_copy(update={"confirm_all": True}))
    else:
        check_request(bulk)


@pytest.mark.parametrize(
    "selection",
    [
        {"path_globs": ["**/*"]},
        {"path_globs": ["**/*"], "path_mode": "any"},
        {"path_globs": ["*", "*/*", "*/*/*", "*/*/*/*"]},
        {"api_filters": {"date_after": "1970-01-01"}},
        {"api_filters": {"date_after": "2016-12-31T23:00:00Z", "date_before": "2999-01-01"}},
        {"api_filters": {"triggered_at_after": "2001-01-01"}},
        {"api_filters": {"ordering": "-date"}},
        {"max_age_days": 100_000},
        {
            "path_globs": ["**/*"],
            "api_filters": {"date_after": "1970-01-01"},
            "status": ["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"],
        },
    ],
)
def test_a_selection_that_matches_everything_by_behaviour_needs_confirm_all(selection):
    # Issue 13: "**/*" or date_after 1970-01-01 alone passed the confirm_all check.
    bulk = request(**selection)
    assert bulk.selection.is_unfiltered()
    with pytest.raises(RefusedRequest, match="confirm_all") as refused:
        check_request(bulk)
    if "path_globs" in selection:
        assert "match every production-looking path" in str(refused.value)
    check_request(bulk.model_copy(update={"confirm_all": True}))


@pytest.mark.parametrize(
    "selection",
    [
        {"path_globs": ["**/*.py"]},
        {"path_globs": ["src/**"]},
        {"api_filters": {"date_after": "2025-01-01"}},
        {"api_filters": {"date_before": "2025-01-01"}},
        {"api_filters": {"triggered_at_after": "2025-01-01"}},
        {"max_age_days": 30},
    ],
)
def test_a_selection_that_excludes_something_possible_is_filtered(selection):
    bulk = request(**selection)
    assert not bulk.selection.is_unfiltered()
    check_request(bulk)


@pytest.mark.parametrize(
    "api_filters, oldest, newest, refused",
    [
        ({"date_after": "2020-01-01"}, 100, 10, True),  # every incident is newer
        ({"date_after": "2020-01-01"}, 5000, 10, False),  # the oldest falls outside
        ({"date_before": "2020-01-01"}, 6000, 5000, True),  # every incident is older
        ({"date_before": "2020-01-01"}, 6000, 10, False),
    ],
)
def test_date_bounds_that_exclude_nothing_in_the_workspace_need_confirm_all(
    api_filters, oldest, newest, refused
):
    bulk = request(api_filters=api_filters)
    assert bulk.selection.narrowed_by_dates_only(NOW)
    ends = (NOW - timedelta(days=oldest), NOW - timedelta(days=newest))
    if refused:
        with pytest.raises(RefusedRequest, match="exclude no incident of this workspace"):
            check_dates_exclude(bulk, *ends, now=NOW)
        check_dates_exclude(bulk.model_copy(update={"confirm_all": True}), *ends, now=NOW)
    else:
        check_dates_exclude(bulk, *ends, now=NOW)


def test_age_bounds_are_judged_on_the_workspace_too():
    bulk = request(max_age_days=30)
    assert bulk.selection.narrowed_by_dates_only(NOW)
    with pytest.raises(RefusedRequest, match="exclude no incident"):
        check_dates_exclude(bulk, NOW - timedelta(days=20), NOW, now=NOW)
    check_dates_exclude(bulk, NOW - timedelta(days=40), NOW, now=NOW)
    # Another condition narrows already: nothing to check on the workspace.
    assert not request(max_age_days=30, status=["TRIGGERED"]).selection.narrowed_by_dates_only(NOW)
    assert not request(
        api_filters={"triggered_at_after": "2025-01-01"}
    ).selection.narrowed_by_dates_only(NOW)


@pytest.mark.parametrize(
    "api_filters, message",
    [
        ({"detector_name": "aws_iam"}, "unknown filter.*detector_name"),
        ({"tags": ["NOT_A_TAG"]}, "NOT_A_TAG"),
        ({"date_after": "yesterday"}, "ISO-8601"),
        ({"assignee_id": "seven"}, "integer"),
    ],
)
def test_api_filters_are_validated_by_the_client(api_filters, message):
    with pytest.raises(ValueError, match=message):
        check_request(request(api_filters=api_filters))


def test_one_listing_per_assignee_email():
    selection = BulkSelection(
        status=["ASSIGNED"], assignee_emails=["B@corp.example ", "a@corp.example"]
    )
    assert selection.api_queries() == [
        {"status": ["ASSIGNED"], "assignee_email": "a@corp.example"},
        {"status": ["ASSIGNED"], "assignee_email": "b@corp.example"},
    ]

# --------------------------------------------------------------------------- decide


@pytest.mark.parametrize(
    "action, status, arguments",
    [
        ({"kind": "resolve", "secret_revoked": True}, "TRIGGERED", {"secret_revoked": True}),
        (
            {"kind": "ignore", "ignore_reason": "false_positive"},
            "ASSIGNED",
            {"ignore_reason": "false_positive"},
        ),
        ({"kind": "unassign"}, "ASSIGNED", {}),
        ({"kind": "reopen"}, "RESOLVED", {}),
        (
            {"kind": "share", "lifespan_hours": 24},
            "IGNORED",
            {"auto_healing": False, "feedback_collection": True, "lifespan_hours": 24},
        ),
        (
            {"kind": "assign", "assignee_email": "Next@corp.example"},
            "TRIGGERED",
            {"email": "next@corp.example", "send_email": False},
        ),
    ],
)
def test_each_action_becomes_a_decision_with_its_arguments(action, status, arguments):
    inc = incident(
        1, status=status, assignee_email="old@corp.example" if status == "ASSIGNED" else None
    )
    plan = decide_bulk_remediation([inc], {}, request(action, status=[status]), now=NOW)
    (decision,) = plan.decisions
    assert decision.playbook == PLAYBOOK == plan.playbook
    assert decision.action is Action(action["kind"])
    assert decision.arguments == arguments
    # Written only if the incident still looks as the plan saw it.
    assert decision.precondition.statuses == (status,)
    assert decision.precondition.check_assignee


@pytest.mark.parametrize(
    "action, status, reason",
    [
        ({"kind": "resolve"}, "RESOLVED", SKIP_ALREADY_DONE),
        ({"kind": "ignore", "ignore_reason": "low_risk"}, "IGNORED", SKIP_ALREADY_DONE),
        ({"kind": "reopen"}, "TRIGGERED", SKIP_ALREADY_DONE),
        ({"kind": "unassign"}, "TRIGGERED", SKIP_ALREADY_DONE),
        ({"kind": "resolve"}, "IGNORED", SKIP_NOT_APPLICABLE),
        ({"kind": "assign", "assignee_email": "n@corp.example"}, "RESOLVED", SKIP_NOT_APPLICABLE),
    ],
)
def test_an_action_that_does_not_apply_is_a_skip(action, status, reason):
    plan = decide_bulk_remediation(
        [incident(1, status=status)], {}, request(action, status=[status]), now=NOW
    )
    assert plan.decisions == () and [s.reason for s in plan.skips] == [reason]


def test_note_only_decision_id_follows_the_reason():
    inc = incident(1)
    first = decide_bulk_remediation(
        [inc], {}, request(reason="first", status=["TRIGGERED"]), now=NOW
    )
    again = decide_bulk_remediation(
        [inc], {}, request(reason="first", status=["TRIGGERED"]), now=NOW
    )
    other = decide_bulk_remediation(
        [inc], {}, request(reason="second", status=["TRIGGERED"]), now=NOW
    )
    assert first.decisions[0].action is Action.NOTE
    assert first.decisions[0].decision_id == again.decisions[0].decision_id
    assert first.decisions[0].decision_id != other.decisions[0].decision_id


OFFBOARD = {"kind": "assign", "to_manager": True, "assignee_email": "successor@corp.example"}


def test_offboarding_prefers_the_manager_then_the_successor():
    incidents = [
        incident(1, status="ASSIGNED", assignee_email="Leaver@corp.example"),
        incident(2, status="ASSIGNED", assignee_email="other.leaver@corp.example"),
    ]
    bulk = request(OFFBOARD, assignee_emails=["leaver@corp.example", "other.leaver@corp.example"])
    plan = decide_bulk_remediation(
        incidents,
        {},
        bulk,
        now=NOW,
        managers={"leaver@corp.example": "Boss@corp.example"},
        members=[
            member(7, " Boss@corp.example "),
            member(8, "successor@corp.example"),
            member(9, "gone@corp.example", active=False),
        ],
    )
    # By member id: the member's e-mail may be spelt differently from the directory's.
    assert [(d.incident_id, d.arguments, d.reason) for d in plan.decisions] == [
        (1, {"member_id": 7, "send_email": False}, "bulk_assign_manager"),
        (2, {"member_id": 8, "send_email": False}, "bulk_assign_successor"),
    ]
    assert "boss@corp.example (manager)" in plan.decisions[0].evidence
    assert plan.decisions[0].precondition.assignee_email == "Leaver@corp.example"


def test_offboarding_never_assigns_to_an_inactive_member_or_a_bot():
    inc = incident(1, status="ASSIGNED", assignee_email="leaver@corp.example")
    bulk = request(OFFBOARD, assignee_emails=["leaver@corp.example"])
    plan = decide_bulk_remediation(
        [inc],
        {},
        bulk,
        now=NOW,
        managers={"leaver@corp.example": "ci-bot@corp.example"},
        members=[
            member(1, "ci-bot@corp.example"),
            member(2, "someone@corp.example"),
            member(3, "successor@corp.example", active=False),
        ],
    )
    assert plan.decisions == () and [s.reason for s in plan.skips] == [SKIP_NO_SUCCESSOR]
    assert "successor@corp.example" in plan.skips[0].evidence


def test_manager_only_without_a_manager_is_a_skip():
    inc = incident(1, status="ASSIGNED", assignee_email="leaver@corp.example")
    bulk = request({"kind": "assign", "to_manager": True}, assignee_emails=["leaver@corp.example"])
    plan = decide_bulk_remediation([inc], {}, bulk, now=NOW, managers={})
    assert [s.reason for s in plan.skips] == [SKIP_NO_SUCCESSOR]


def test_the_note_carries_the_reason_and_what_was_done():
    inc = incident(1, status="TRIGGERED")
    bulk = request(
        {"kind": "resolve", "secret_revoked": True},
        reason="Rotated by INC-42",
        status=["TRIGGERED"],
    )
    (decision,) = decide_bulk_remediation([inc], {}, bulk, now=NOW).decisions
    text = render_note(decision, bulk)
    assert text.startswith("Rotated by INC-42")
    assert "resolve" in text and "secret_revoked=True" in text


@settings(max_examples=60, deadline=None)
@given(
    statuses=st.lists(
        st.sampled_from(["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"]), min_size=1, max_size=8
    ),
    wanted=st.sets(st.sampled_from(["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"]), min_size=1),
    paths=st.lists(
        st.sampled_from(["tests/a.py", "src/a.py", "a/tests/b.py", "", "testsX/a.py"]),
        min_size=1,
        max_size=3,
    ),
)
def test_property_never_decides_outside_the_selection(statuses, wanted, paths):
    incidents = [incident(i + 1, status=s) for i, s in enumerate(statuses)]
    occurrences = {
        i.id: [occurrence(i.id * 10 + k, i.id, filepath=p or None) for k, p in enumerate(paths)]
        for i in incidents
    }
    bulk = request({"kind": "note"}, status=sorted(wanted), path_globs=["**/tests/**", "tests/**"])
    plan = decide_bulk_remediation(incidents, occurrences, bulk, now=NOW)
    every_path_is_a_test = all(p in ("tests/a.py", "a/tests/b.py") for p in paths)
    for decision in plan.decisions:
        assert statuses[decision.incident_id - 1] in wanted
        assert every_path_is_a_test
