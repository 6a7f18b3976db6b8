"""Test-directory auto-ignore: each skip reason, the decision, the recheck, safety properties."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tasks.decide.auto_ignore import (
    PLAYBOOK,
    AutoIgnorePolicy,
    decide_auto_ignore,
    decide_recheck,
)
from tasks.decide.paths import DEFAULT_TEST_GLOBS
from tasks.decide.plan import Action, Precondition
from tests.fixtures.factories import by_incident, incident, occurrence

POLICY = AutoIgnorePolicy()


def decide(incidents, occurrences, policy=POLICY):
    return decide_auto_ignore(incidents, occurrences, policy)


def only_skip(plan):
    assert plan.decisions == ()
    assert len(plan.skips) == 1
    return plan.skips[0]


# -- the policy --------------------------------------------------------------------------------
def test_policy_defaults():
    assert POLICY.validities == ("invalid",)
    assert POLICY.veto_tags == ("PUBLICLY_EXPOSED", "PUBLICLY_LEAKED")
    assert POLICY.test_globs == DEFAULT_TEST_GLOBS
    assert POLICY.trust_test_file_tag is False
    assert POLICY.recheck is True
    assert (POLICY.severities, POLICY.detectors, POLICY.sources) == ((), (), ())


@pytest.mark.parametrize("validities", [["valid"], ["invalid", "valid"], "valid", [" VALID "]])
def test_policy_never_allows_valid(validities):
    with pytest.raises(ValidationError, match="never ignored"):
        AutoIgnorePolicy(validities=validities)


def test_policy_rejects_unknown_validity():
    with pytest.raises(ValidationError):
        AutoIgnorePolicy(validities=["maybe"])


@pytest.mark.parametrize("tags", [[], ["PUBLICLY_EXPOSED"], ["SENSITIVE_FILE", "PUBLICLY_LEAKED"]])
def test_policy_keeps_the_public_vetoes(tags):
    with pytest.raises(ValidationError, match="must stay in veto_tags"):
        AutoIgnorePolicy(veto_tags=tags)


def test_policy_adds_veto_tags_normalised():
    policy = AutoIgnorePolicy(
        veto_tags=["publicly_exposed", "PUBLICLY_LEAKED", " sensitive_file "]
    )
    assert policy.veto_tags == ("PUBLICLY_EXPOSED", "PUBLICLY_LEAKED", "SENSITIVE_FILE")


@pytest.mark.parametrize("globs", [[], ["**"], [""]])
def test_policy_rejects_useless_globs(globs):
    with pytest.raises(ValidationError):
        AutoIgnorePolicy(test_globs=globs)


@pytest.mark.parametrize("globs", [
    ["**/*"], ["**/**/*"], ["./**/*"], ["*", "*/*", "*/*/*", "*/*/*/*"],
    [*DEFAULT_TEST_GLOBS, "**/*"],
])
def test_policy_refuses_globs_that_match_every_production_path(globs):
    # Issue 13: "**/*" was accepted (only a bare "**" was refused) and planned 58 ignores for 15.
    with pytest.raises(ValidationError, match="match every production-looking path"):
        AutoIgnorePolicy(test_globs=globs)


def test_policy_keeps_globs_that_do_not_match_everything():
    for globs in (["e2e/**"], ["**/tests/**", "*"], ["**/*_test.go", "**/*.spec.ts"]):
        assert AutoIgnorePolicy(test_globs=globs).test_globs == tuple(globs)


def test_policy_is_a_documented_form():
    schema = AutoIgnorePolicy.model_json_schema()
    assert all(field.get("description") for field in schema["properties"].values())
    assert schema["properties"]["validities"]["items"]["enum"] == [
        "invalid", "no_checker", "failed_to_check", "unknown"
    ]
    with pytest.raises(ValidationError):
        AutoIgnorePolicy(unknown_knob=True)


# -- the decision ------------------------------------------------------------------------------
def test_ignores_when_every_occurrence_is_in_a_test_path():
    inc = incident(7, status="ASSIGNED", occurrences_count=2)
    occ = by_incident(
        occurrence(70, 7, filepath="svc/tests/test_db.py"),
        occurrence(71, 7, filepath="pkg/db_test.go"),
    )
    plan = decide([inc], occ)
    assert plan.playbook == PLAYBOOK == "test-directory-auto-ignore"
    assert plan.skips == ()
    (decision,) = plan.decisions
    assert decision.incident_id == 7
    assert decision.action is Action.IGNORE
    assert decision.arguments == {"ignore_reason": "test_credential"}
    assert decision.reason == "all_occurrences_in_test_paths"
    assert decision.precondition == Precondition(statuses=("TRIGGERED", "ASSIGNED"))
    assert "'svc/tests/test_db.py'" in decision.evidence and "'pkg/db_test.go'" in decision.evidence
    assert "All 2 occurrence(s)" in decision.evidence
    assert "invalid" in decision.evidence
    assert "**/tests/**" in decision.evidence and "**/*_test.go" in decision.evidence


def test_evidence_lists_five_paths_and_the_count():
    inc = incident(1, occurrences_count=8)
    occ = by_incident(*(occurrence(i, 1, filepath=f"tests/file{i}.py") for i in range(8)))
    (decision,) = decide([inc], occ).decisions
    assert decision.evidence.count("'tests/file") == 5
    assert "All 8 occurrence(s)" in decision.evidence and "and 3 more" in decision.evidence


def test_not_open():
    for status in ("RESOLVED", "IGNORED"):
        skip = only_skip(decide([incident(1, status=status)], by_incident(occurrence(1))))
        assert (skip.reason, skip.evidence) == ("not_open", f"status is {status}")


@pytest.mark.parametrize("validity", ["valid", "no_checker", "failed_to_check", "unknown", None])
def test_validity_not_allowed_by_default(validity):
    plan = decide([incident(1, validity=validity)], by_incident(occurrence(1)))
    assert only_skip(plan).reason == "validity_not_allowed"


def test_listed_validities_are_allowed_but_valid_never():
    policy = AutoIgnorePolicy(validities=["invalid", "no_checker", "unknown"])
    occ = by_incident(occurrence(1, 1), occurrence(2, 2), occurrence(3, 3))
    plan = decide(
        [
            incident(1, validity="no_checker"),
            incident(2, validity="unknown"),
            incident(3, validity="valid"),
        ],
        occ, policy,
    )
    assert [d.incident_id for d in plan.decisions] == [1, 2]
    assert [(s.incident_id, s.reason) for s in plan.skips] == [(3, "validity_not_allowed")]


@pytest.mark.parametrize("tag", ["PUBLICLY_EXPOSED", "PUBLICLY_LEAKED"])
def test_veto_tag_on_incident(tag):
    plan = decide([incident(1, tags=["TEST_FILE", tag])], by_incident(occurrence(1)))
    skip = only_skip(plan)
    assert skip.reason == "veto_tag" and tag in skip.evidence


def test_extra_veto_tag_and_veto_on_an_occurrence():
    policy = AutoIgnorePolicy(veto_tags=[*POLICY.veto_tags, "SENSITIVE_FILE"])
    plan = decide([incident(1, tags=["SENSITIVE_FILE"])], by_incident(occurrence(1)), policy)
    assert only_skip(plan).reason == "veto_tag"
    plan = decide(
        [incident(1)], by_incident(occurrence(1, tags=["PUBLICLY_EXPOSED"])), POLICY
    )
    assert only_skip(plan).reason == "veto_tag"


def test_filtered_out_by_severity_detector_and_source():
    occ = by_incident(occurrence(1))
    assert only_skip(decide(
        [incident(1, severity="low")], occ, AutoIgnorePolicy(severities=["high", "critical"])
    )).reason == "filtered_out"
    assert only_skip(decide(
        [incident(1, detector="aws_iam")], occ, AutoIgnorePolicy(detectors=["slack_bot_token"])
    )).reason == "filtered_out"
    assert only_skip(decide(
        [incident(1)], occ, AutoIgnorePolicy(sources=["acme/other"])
    )).reason == "filtered_out"
    # And matching filters let it through; detectors match by name or by group name.
    policy = AutoIgnorePolicy(
        severities=["high"], detectors=["generic"], sources=["acme/payments-api"]
    )
    plan = decide([incident(1, detector="generic_password", detector_group="generic")], occ, policy)
    assert [d.incident_id for d in plan.decisions] == [1]


def test_source_filter_needs_every_occurrence_in_a_listed_source():
    occ = by_incident(occurrence(1, source="acme/payments-api"), occurrence(2, source="acme/web"))
    plan = decide(
        [incident(1, occurrences_count=2)], occ, AutoIgnorePolicy(sources=["acme/payments-api"])
    )
    skip = only_skip(plan)
    assert skip.reason == "filtered_out" and "acme/web" in skip.evidence


def test_occurrences_unseen():
    occ = by_incident(occurrence(1), occurrence(2))
    skip = only_skip(decide([incident(1, occurrences_count=3)], occ))
    assert (skip.reason, skip.evidence) == ("occurrences_unseen", "2 of 3 occurrences returned")
    # None seen of some is unseen too.
    assert only_skip(decide([incident(1, occurrences_count=3)], {})).reason == "occurrences_unseen"


def test_an_unknown_occurrences_count_is_its_own_reason():
    # Issue 13: a null count said "2 of an unknown number of occurrences seen" as if unseen.
    occ = by_incident(occurrence(1), occurrence(2))
    skip = only_skip(decide([incident(1, occurrences_count=None)], occ))
    assert skip.reason == "occurrences_count_unknown"
    assert skip.evidence.startswith("2 occurrence(s) returned")
    assert only_skip(decide([incident(1, occurrences_count=None)], {})).reason == (
        "occurrences_count_unknown")


def test_more_occurrences_than_the_count_is_a_stale_count():
    occ = by_incident(occurrence(1), occurrence(2))
    skip = only_skip(decide([incident(1, occurrences_count=1)], occ))
    assert (skip.reason, skip.evidence) == (
        "occurrences_count_mismatch", "2 occurrences returned, but occurrences_count says 1")


def test_a_vetoed_occurrence_is_counted_seen_and_named_as_the_veto():
    occ = by_incident(occurrence(1), occurrence(2, tags=["PUBLICLY_EXPOSED"]))
    skip = only_skip(decide([incident(1, occurrences_count=2)], occ))
    assert skip.reason == "veto_tag"
    assert skip.evidence == ("occurrence 2 tagged PUBLICLY_EXPOSED (1 of 2 returned "
                             "occurrence(s) vetoed by the policy's veto tags)")
    # Known-no wins over unknown: a vetoed occurrence is the reason even when some are unseen.
    assert only_skip(decide([incident(1, occurrences_count=5)], occ)).reason == "veto_tag"


def test_duplicated_or_misfiled_occurrences_do_not_count_as_seen():
    dup = occurrence(1)
    misfiled = occurrence(9, incident_id=2)
    skip = only_skip(decide([incident(1, occurrences_count=3)], {1: [dup, dup, misfiled]}))
    assert (skip.reason, skip.evidence) == ("occurrences_unseen", "1 of 3 occurrences returned")


def test_no_occurrences():
    skip = only_skip(decide([incident(1, occurrences_count=0)], {}))
    assert skip.reason == "no_occurrences"


@pytest.mark.parametrize("path", [None, ""])
def test_null_path(path):
    occ = by_incident(
        occurrence(1, filepath="tests/a.py"), occurrence(2, filepath=path, tags=["TEST_FILE"])
    )
    policy = AutoIgnorePolicy(trust_test_file_tag=True)
    skip = only_skip(decide([incident(1, occurrences_count=2)], occ, policy))
    assert skip.reason == "null_path" and "occurrence 2" in skip.evidence


def test_production_path_names_the_first_offending_path_escaped():
    occ = by_incident(
        occurrence(1, filepath="tests/a.py"),
        occurrence(2, filepath="latest/\x1b[31mconfig\u202e.py"),
        occurrence(3, filepath="contest/app.py"),
    )
    skip = only_skip(decide([incident(1, occurrences_count=3)], occ))
    assert skip.reason == "production_path"
    assert skip.evidence == "'latest/\\x1b[31mconfig\\u202e.py' is not a test path"
    assert "\x1b" not in skip.evidence and "\u202e" not in skip.evidence


def test_long_paths_are_cut_in_evidence():
    occ = by_incident(occurrence(1, filepath="src/" + "a" * 5000))
    skip = only_skip(decide([incident(1)], occ))
    assert skip.reason == "production_path" and len(skip.evidence) < 300


def test_test_file_tag_counts_only_when_trusted():
    occ = by_incident(occurrence(1, filepath="conf/dev_settings.py", tags=["TEST_FILE"]))
    assert only_skip(decide([incident(1)], occ)).reason == "production_path"
    plan = decide([incident(1)], occ, AutoIgnorePolicy(trust_test_file_tag=True))
    (decision,) = plan.decisions
    assert "TEST_FILE" in decision.evidence


def test_custom_globs():
    occ = by_incident(occurrence(1, filepath="e2e/login.ts"))
    assert only_skip(decide([incident(1)], occ)).reason == "production_path"
    plan = decide([incident(1)], occ, AutoIgnorePolicy(test_globs=["e2e/**"]))
    assert len(plan.decisions) == 1


def test_each_incident_once_in_id_order():
    occ = by_incident(occurrence(1, 1), occurrence(2, 2), occurrence(3, 3, filepath="src/app.py"))
    plan = decide([incident(3), incident(1), incident(2), incident(1)], occ)
    assert [d.incident_id for d in plan.decisions] == [1, 2]
    assert [s.incident_id for s in plan.skips] == [3]


# -- recheck -----------------------------------------------------------------------------------
def test_recheck_reopens_a_secret_that_became_valid():
    incidents = {5: incident(5, status="IGNORED", validity="valid")}
    plan = decide_recheck([5], incidents, by_incident(occurrence(1, 5)))
    (decision,) = plan.decisions
    assert (decision.action, decision.reason) == (Action.REOPEN, "secret_became_valid")
    assert decision.arguments == {}
    assert decision.precondition == Precondition(statuses=("IGNORED",))
    assert decision.playbook == PLAYBOOK


def test_recheck_reopens_on_an_occurrence_outside_test_paths():
    incidents = {5: incident(5, status="IGNORED", occurrences_count=2)}
    occ = by_incident(occurrence(1, 5), occurrence(2, 5, filepath="deploy/prod.env"))
    (decision,) = decide_recheck([5], incidents, occ).decisions
    assert decision.reason == "occurrence_outside_test_paths"
    assert "'deploy/prod.env'" in decision.evidence


def test_recheck_reopens_on_a_null_path():
    incidents = {5: incident(5, status="IGNORED", occurrences_count=2)}
    occ = by_incident(occurrence(1, 5), occurrence(2, 5, filepath=None))
    (decision,) = decide_recheck([5], incidents, occ).decisions
    assert decision.reason == "occurrence_outside_test_paths"


def test_recheck_leaves_the_rest():
    incidents = {
        1: incident(1, status="IGNORED"),  # still only in tests
        2: incident(2, status="TRIGGERED", validity="valid"),  # a human reopened it already
        3: incident(3, status="RESOLVED"),
    }
    occ = by_incident(occurrence(1, 1), occurrence(2, 2, filepath="src/app.py"))
    plan = decide_recheck([3, 1, 2, 4, 1], incidents, occ)
    assert plan.decisions == ()
    assert [(s.incident_id, s.reason) for s in plan.skips] == [
        (1, "still_test_credential"),
        (2, "not_ignored"),
        (3, "not_ignored"),
        (4, "incident_unseen"),
    ]


def test_recheck_honours_the_policy_globs_and_tag_trust():
    incidents = {1: incident(1, status="IGNORED")}
    occ = by_incident(occurrence(1, 1, filepath="qa/x.py", tags=["TEST_FILE"]))
    (decision,) = decide_recheck([1], incidents, occ).decisions
    assert decision.reason == "occurrence_outside_test_paths"
    trusting = AutoIgnorePolicy(trust_test_file_tag=True)
    assert decide_recheck([1], incidents, occ, trusting).decisions == ()


# -- properties --------------------------------------------------------------------------------
PATHS = st.one_of(
    st.sampled_from([
        "tests/a.py", "a/test/b.txt", "x/__tests__/y.js", "spec/s.rb", "pkg/x_test.go", "test_a.py",
        "w/a.spec.ts", "fixtures/f.json", "go/testdata/d", "latest/config.py", "contest/app.py",
        "attestation/key.pem", "src/test_utils_prod/config.py", "tests.py", "mytests/x",
        "src/app.py", ".env", "Tests/x.py", "x.spec.tsx",
    ]),
    st.none(),
    st.just(""),
    st.text(max_size=20),
)
TAGS = st.lists(
    st.sampled_from(
        ["PUBLICLY_EXPOSED", "PUBLICLY_LEAKED", "TEST_FILE", "DEFAULT_BRANCH", "SENSITIVE_FILE"]
    ),
    max_size=3, unique=True,
)


STATUSES = st.sampled_from(["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED", "NEW_STATUS"])
VALIDITIES = st.sampled_from(["valid", "invalid", "no_checker", "failed_to_check", "unknown", None])
SOME_PATHS = st.lists(PATHS, max_size=5)


@st.composite
def workspaces(draw):
    """Incidents with occurrences: some complete, some with occurrences missing."""
    incidents, grouped = [], {}
    next_occurrence = 1
    for incident_id in range(1, draw(st.integers(1, 6)) + 1):
        occs = []
        for path in draw(SOME_PATHS):
            occs.append(occurrence(next_occurrence, incident_id, filepath=path, tags=draw(TAGS)))
            next_occurrence += 1
        shown = draw(st.integers(0, len(occs)))  # a listing may have missed some
        grouped[incident_id] = occs[:shown]
        count = draw(st.sampled_from([len(occs), None, draw(st.integers(0, 7))]))
        incidents.append(incident(
            incident_id, status=draw(STATUSES), validity=draw(VALIDITIES), tags=draw(TAGS),
            occurrences_count=count,
        ))
    return incidents, grouped


policies = st.builds(
    AutoIgnorePolicy,
    validities=st.lists(
        st.sampled_from(["invalid", "no_checker", "failed_to_check", "unknown"]), unique=True
    ),
    trust_test_file_tag=st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(workspace=workspaces(), policy=policies)
def test_never_ignores_what_must_not_be_ignored(workspace, policy):
    from tasks.decide.paths import is_test_path

    incidents, grouped = workspace
    by_id = {i.id: i for i in incidents}
    plan = decide(incidents, grouped, policy)
    looked_at = {d.incident_id for d in plan.decisions} | {s.incident_id for s in plan.skips}
    assert looked_at == set(by_id)  # every incident is decided or skipped, with a reason
    for decision in plan.decisions:
        inc, occs = by_id[decision.incident_id], grouped[decision.incident_id]
        assert decision.action is Action.IGNORE
        assert inc.status in ("TRIGGERED", "ASSIGNED")
        assert inc.validity != "valid" and inc.validity in policy.validities
        assert not {"PUBLICLY_EXPOSED", "PUBLICLY_LEAKED"} & set(inc.tags)
        assert not any({"PUBLICLY_EXPOSED", "PUBLICLY_LEAKED"} & set(o.tags) for o in occs)
        assert inc.occurrences_count is not None and len(occs) >= inc.occurrences_count >= 1
        for o in occs:
            assert o.filepath  # no null path
            assert is_test_path(o.filepath, policy.test_globs) or (
                policy.trust_test_file_tag and "TEST_FILE" in o.tags
            )


@settings(max_examples=200, deadline=None)
@given(workspace=workspaces(), policy=policies, seed=st.integers(0, 2**16))
def test_decisions_are_deterministic_and_order_free(workspace, policy, seed):
    incidents, grouped = workspace
    first = decide(incidents, grouped, policy)
    assert decide(incidents, grouped, policy) == first
    rng = random.Random(seed)
    shuffled_incidents = rng.sample(incidents, len(incidents))
    groups = rng.sample(sorted(grouped.items()), len(grouped))
    shuffled = {k: rng.sample(v, len(v)) for k, v in groups}
    again = decide(shuffled_incidents, shuffled, policy)
    assert again == first  # same decisions, same skips, same evidence


@settings(max_examples=200, deadline=None)
@given(workspace=workspaces(), policy=policies)
def test_recheck_reopens_only_our_ignored_incidents(workspace, policy):
    incidents, grouped = workspace
    by_id = {i.id: i for i in incidents}
    ours = sorted(by_id)[::2]
    plan = decide_recheck(ours, by_id, grouped, policy)
    for decision in plan.decisions:
        assert decision.incident_id in ours
        assert decision.action is Action.REOPEN
        assert by_id[decision.incident_id].status == "IGNORED"


def test_notes_explain_the_ignore_and_the_reopen():
    from tasks.decide.auto_ignore import render_note

    (ignore,) = decide([incident(1)], by_incident(occurrence(1))).decisions
    note = render_note(ignore)
    assert note.startswith("Ignored as a test credential") and "'tests/test_settings.py'" in note
    incidents = {1: incident(1, status="IGNORED", validity="valid")}
    (reopen,) = decide_recheck([1], incidents, {}).decisions
    assert render_note(reopen).startswith("Reopened:")


def test_recheck_never_reopens_an_ignore_someone_else_made():
    """A person ignored it (say as a false positive) after our ignore was undone: theirs."""
    ours = incident(5, status="IGNORED", validity="valid").model_copy(
        update={"ignorer_api_token_id": "our-token"})
    theirs = incident(6, status="IGNORED", validity="valid").model_copy(
        update={"ignorer_api_token_id": None, "ignorer_id": 42})
    plan = decide_recheck([5, 6], {5: ours, 6: theirs}, by_incident(occurrence(1, 5)),
                          token_id="our-token")
    assert [d.incident_id for d in plan.decisions] == [5]
    assert [(s.incident_id, s.reason) for s in plan.skips] == [(6, "ignored_by_someone_else")]
