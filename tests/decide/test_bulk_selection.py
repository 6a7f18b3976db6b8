"""The bulk selection: which incidents a bulk request acts on, re-checked on the answers
(tasks/decide/bulk_selection.py)."""
from __future__ import annotations

import pytest

from tasks.decide.bulk_remediation import SKIP_NO_OCCURRENCES, BulkSelection, select
from tests.decide.bulk_factories import NOW, aged, ids
from tests.decide.factories import by_incident, incident, occurrence


def test_api_conditions_are_rechecked_on_the_answers():
    incidents = [
        aged(
            incident(
                1, status="TRIGGERED", severity="high", validity="invalid", detector="aws_iam"
            ),
            1,
            risk_score=50,
        ),
        aged(
            incident(2, status="RESOLVED", severity="high", validity="invalid", detector="aws_iam"),
            1,
            risk_score=50,
        ),
        aged(
            incident(3, status="TRIGGERED", severity="low", validity="invalid", detector="aws_iam"),
            1,
            risk_score=50,
        ),
        aged(
            incident(4, status="TRIGGERED", severity="high", validity="valid", detector="aws_iam"),
            1,
            risk_score=50,
        ),
        aged(
            incident(5, status="TRIGGERED", severity="high", validity="invalid", detector="slack"),
            1,
            risk_score=50,
        ),
        aged(
            incident(
                6, status="TRIGGERED", severity="high", validity="invalid", detector="aws_iam"
            ),
            1,
            risk_score=90,
        ),
        aged(
            incident(
                7, status="TRIGGERED", severity="high", validity="invalid", detector="aws_iam"
            ),
            1,
            risk_score=None,
        ),
    ]
    selection = BulkSelection(
        status=["TRIGGERED"],
        severity=["high"],
        validity=["invalid"],
        detector_group_name="aws_iam",
        risk_score_max=60,
    )
    chosen, unknown = select(incidents, {}, selection, now=NOW)
    assert ids(chosen) == [1] and unknown == []


def test_assignee_emails_compare_normalised():
    incidents = [
        incident(1, status="ASSIGNED", assignee_email="Leaver@Corp.Example"),
        incident(2, status="ASSIGNED", assignee_email="other@corp.example"),
        incident(3, status="ASSIGNED", assignee_email="leaver@corp.example.evil"),
    ]
    chosen, _ = select(
        incidents, {}, BulkSelection(assignee_emails=["leaver@corp.example"]), now=NOW
    )
    assert ids(chosen) == [1]


def test_age_bounds_in_days():
    incidents = [aged(incident(i), days) for i, days in ((1, 2), (2, 10), (3, 40))]
    assert ids(select(incidents, {}, BulkSelection(min_age_days=10), now=NOW)[0]) == [2, 3]
    assert ids(select(incidents, {}, BulkSelection(max_age_days=10), now=NOW)[0]) == [1, 2]
    assert ids(
        select(incidents, {}, BulkSelection(min_age_days=5, max_age_days=30), now=NOW)[0]
    ) == [2]


def test_path_globs_all_by_default_any_on_request():
    incidents = [incident(1, occurrences_count=2), incident(2, occurrences_count=2), incident(3)]
    occurrences = by_incident(
        occurrence(10, 1, filepath="src/tests/conftest.py"),
        occurrence(11, 1, filepath="tests/unit/a.py"),
        occurrence(20, 2, filepath="tests/a.py"),
        occurrence(21, 2, filepath="src/app.py"),
        occurrence(30, 3, filepath="src/testsuite/a.py"),  # a segment, not a substring
    )
    every = BulkSelection(path_globs=["**/tests/**"])
    assert ids(select(incidents, occurrences, every, now=NOW)[0]) == [1]
    some = BulkSelection(path_globs=["**/tests/**"], path_mode="any")
    assert ids(select(incidents, occurrences, some, now=NOW)[0]) == [1, 2]


def test_author_email_is_equality_not_substring():
    incidents = [incident(1), incident(2), incident(3)]
    occurrences = by_incident(
        occurrence(10, 1, author="bot@x.example"),
        occurrence(11, 1, author=" Jane.Doe@Corp.Example "),
        occurrence(20, 2, author="jane.doe@corp.example.org"),
        occurrence(30, 3, author=None),
    )
    selection = BulkSelection(author_emails=["jane.doe@corp.example"])
    assert ids(select(incidents, occurrences, selection, now=NOW)[0]) == [1]


def test_source_name_case_insensitive_equality():
    incidents = [incident(1), incident(2), incident(3)]
    occurrences = by_incident(
        occurrence(10, 1, source="acme/Payments-API"),
        occurrence(20, 2, source="acme/payments-api-legacy"),
        occurrence(30, 3, source=None),
    )
    selection = BulkSelection(source_names=["acme/payments-api"])
    assert ids(select(incidents, occurrences, selection, now=NOW)[0]) == [1]


def test_an_incident_without_occurrences_is_skipped_not_guessed():
    chosen, unknown = select([incident(1)], {}, BulkSelection(path_globs=["**/tests/**"]), now=NOW)
    assert chosen == [] and [s.reason for s in unknown] == [SKIP_NO_OCCURRENCES]
    # Without an occurrence condition nothing is needed.
    assert ids(select([incident(1)], {}, BulkSelection(status=["TRIGGERED"]), now=NOW)[0]) == [1]


@pytest.mark.parametrize(
    "count, reason, evidence",
    [
        (
            None,
            "occurrences_count_unknown",
            "2 occurrence(s) returned, and the API gives no "
            "occurrences_count: not known to be all of them",
        ),
        (3, "occurrences_unseen", "2 of 3 occurrences returned"),
        (1, "occurrences_count_mismatch", "2 occurrences returned, but occurrences_count says 1"),
    ],
)
def test_path_mode_all_needs_every_occurrence_seen(count, reason, evidence):
    # Issue 13: path_mode="all" never compared what it saw with occurrences_count.
    occurrences = by_incident(
        occurrence(10, 1, filepath="tests/a.py"),
        occurrence(11, 1, filepath="tests/b.py"),
        occurrence(11, 1, filepath="tests/b.py"),
    )  # listed twice: once
    every = BulkSelection(path_globs=["tests/**"])
    chosen, unknown = select([incident(1, occurrences_count=count)], occurrences, every, now=NOW)
    assert chosen == []
    assert [(s.incident_id, s.reason, s.evidence) for s in unknown] == [(1, reason, evidence)]
    assert ids(select([incident(1, occurrences_count=2)], occurrences, every, now=NOW)[0]) == [1]
    # One returned occurrence outside the globs already decides "no": not selected, no skip.
    mixed = by_incident(occurrence(10, 1, filepath="src/a.py"))
    assert select([incident(1, occurrences_count=3)], mixed, every, now=NOW) == ([], [])
    # path_mode "any" needs only the one that matches.
    some = BulkSelection(path_globs=["tests/**"], path_mode="any")
    assert ids(select([incident(1, occurrences_count=count)], occurrences, some, now=NOW)[0]) == [1]


def test_duplicates_from_several_listings_count_once():
    inc = incident(1, status="ASSIGNED", assignee_email="a@corp.example")
    chosen, _ = select([inc, inc], {}, BulkSelection(status=["ASSIGNED"]), now=NOW)
    assert ids(chosen) == [1]

