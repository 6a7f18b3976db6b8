"""Test-directory auto-ignore: ignore open incidents whose every occurrence sits in a test path.

Pure: incidents, their occurrences (fetched in bulk and grouped by incident) and a policy in,
a Plan out. Safe by construction, whatever the policy says:
- a `valid` secret is never ignored (the policy cannot even list it);
- PUBLICLY_EXPOSED and PUBLICLY_LEAKED always veto (the policy can add tags, not remove these);
- every occurrence must have been seen (as many as `occurrences_count`, counted before the veto
  check: tasks/decide/coverage.py) and every path must match a test-path glob; a null path is
  never a test path; globs that match every production-looking path are refused.
`decide_recheck` undoes our own ignores that stopped being true (GitGuardian never reopens an
ignored incident by itself).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clients.models import OPEN_STATUSES
from tasks.decide.coverage import occurrence_gap
from tasks.decide.notes import clip, note_budget
from tasks.decide.paths import (
    DEFAULT_TEST_GLOBS,
    PRODUCTION_LOOKING_PATHS,
    matches_everything,
    matching_glob,
    printable,
    validate_glob,
)
from tasks.decide.plan import Action, Decision, Plan, Precondition, Skip

PLAYBOOK = "test-directory-auto-ignore"
ALWAYS_VETO = ("PUBLICLY_EXPOSED", "PUBLICLY_LEAKED")
TEST_FILE_TAG = "TEST_FILE"
IGNORE_REASON = "test_credential"
EVIDENCE_PATHS = 5  # paths quoted in a decision's evidence; the count says how many in all

Validity = Literal["invalid", "no_checker", "failed_to_check", "unknown"]


class AutoIgnorePolicy(BaseModel):
    """What counts as a harmless test credential that may be ignored without a human."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    validities: tuple[Validity, ...] = Field(
        ("invalid",),
        description="Secret validities that may be ignored. 'valid' is never allowed; "
        "'no_checker', 'failed_to_check' and 'unknown' only if listed here.",
    )
    veto_tags: tuple[str, ...] = Field(
        ALWAYS_VETO,
        description="Incident or occurrence tags that forbid the ignore. PUBLICLY_EXPOSED and "
        "PUBLICLY_LEAKED must stay listed; add others (e.g. SENSITIVE_FILE) as needed.",
    )
    test_globs: tuple[str, ...] = Field(
        DEFAULT_TEST_GLOBS,
        description="Test-path globs, matched by path segments and case-sensitively: '**' is "
        "any number of directories, '*' '?' '[..]' stay within one segment.",
    )
    trust_test_file_tag: bool = Field(
        False,
        description="Count an occurrence tagged TEST_FILE by GitGuardian as a test path even "
        "when no glob matches (a null path still blocks).",
    )
    severities: tuple[str, ...] = Field(
        (), description="Only incidents of these severities (empty: any severity)."
    )
    detectors: tuple[str, ...] = Field(
        (), description="Only incidents of these detectors, by name or group name (empty: any)."
    )
    sources: tuple[str, ...] = Field(
        (),
        description="Only incidents whose every occurrence is in one of these sources, by full "
        "name such as 'acme/payments-api' (empty: any source).",
    )
    recheck: bool = Field(
        True,
        description="Reopen incidents this playbook ignored earlier whose secret became valid "
        "or which gained an occurrence outside test paths.",
    )

    @field_validator("validities", mode="before")
    @classmethod
    def _never_valid(cls, value: Any) -> Any:
        values = (value,) if isinstance(value, str) else tuple(value or ())
        if any(str(v).strip().casefold() == "valid" for v in values):
            raise ValueError("a 'valid' secret is never ignored: remove 'valid' from validities")
        return tuple(dict.fromkeys(str(v).strip() for v in values))

    @field_validator("veto_tags", mode="before")
    @classmethod
    def _keep_public_vetoes(cls, value: Any) -> Any:
        values = (value,) if isinstance(value, str) else tuple(value or ())
        tags = tuple(dict.fromkeys(str(v).strip().upper() for v in values if str(v).strip()))
        missing = [t for t in ALWAYS_VETO if t not in tags]
        if missing:
            raise ValueError(
                f"{', '.join(missing)} must stay in veto_tags: public leaks are never ignored"
            )
        return tags

    @field_validator("test_globs", mode="before")
    @classmethod
    def _usable_globs(cls, value: Any) -> Any:
        values = (value,) if isinstance(value, str) else tuple(value or ())
        globs = tuple(dict.fromkeys(validate_glob(str(v)) for v in values))
        if not globs:
            raise ValueError("at least one test-path glob is needed")
        if matches_everything(globs):
            shown = ", ".join(PRODUCTION_LOOKING_PATHS[:5])
            raise ValueError(
                f"test_globs {list(globs)} match every production-looking path ({shown}, ...): "
                "they would call every path a test path; list the test folders and file "
                "names instead"
            )
        return globs

    @field_validator("severities", "detectors", "sources", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        values = (value,) if isinstance(value, str) else tuple(value or ())
        return tuple(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))


def decide_auto_ignore(
    incidents: Iterable[Any],
    occurrences_by_incident: Mapping[int, Sequence[Any]],
    policy: AutoIgnorePolicy = AutoIgnorePolicy(),
) -> Plan:
    """Ignore (reason `test_credential`) each open incident whose every occurrence is in a test
    path; every other incident looked at is a Skip with a reason code."""
    decisions: list[Decision] = []
    skips: list[Skip] = []
    for incident in _by_id(incidents):
        verdict = _judge(incident, occurrences_by_incident, policy)
        (decisions if isinstance(verdict, Decision) else skips).append(verdict)
    return Plan(PLAYBOOK, tuple(decisions), tuple(skips))


def decide_recheck(
    previously_ignored: Iterable[int],
    incidents: Mapping[int, Any],
    occurrences_by_incident: Mapping[int, Sequence[Any]],
    policy: AutoIgnorePolicy = AutoIgnorePolicy(),
    *,
    token_id: str | None = None,
) -> Plan:
    """Reopen incidents this playbook ignored (ids from the ledger) that are still IGNORED and
    whose secret is now `valid` or which have an occurrence outside test paths.

    With `token_id` (our token's id), an incident whose ignore was made by anyone else (a person
    who ignored it again after a reopen, another token) is left alone: `ignored_by_someone_else`.
    """
    decisions: list[Decision] = []
    skips: list[Skip] = []
    for incident_id in sorted(set(previously_ignored)):
        incident = incidents.get(incident_id)
        if incident is None:
            skips.append(Skip(incident_id, "incident_unseen", "not in this run's listing"))
            continue
        status = _text(incident.status)
        if status != "IGNORED":
            # A human reopened or resolved it since: theirs to handle now.
            skips.append(Skip(incident_id, "not_ignored", f"status is {status}"))
            continue
        ignorer = getattr(incident, "ignorer_api_token_id", None)
        if token_id is not None and ignorer != token_id:
            skips.append(Skip(incident_id, "ignored_by_someone_else",
                              "its current ignore was not made by this project's token"))
            continue
        validity = _text(incident.validity)
        reopen = Precondition(statuses=("IGNORED",))
        if validity == "valid":
            decisions.append(Decision(
                PLAYBOOK, incident_id, Action.REOPEN, {}, "secret_became_valid",
                "Reopened: this incident was ignored as a test credential, and GitGuardian now "
                "checks its secret as valid.",
                reopen,
            ))
            continue
        occurrences = _own_occurrences(incident_id, occurrences_by_incident)
        offending = _first_non_test(occurrences, policy)
        if offending is not None:
            decisions.append(Decision(
                PLAYBOOK, incident_id, Action.REOPEN, {}, "occurrence_outside_test_paths",
                f"Reopened: this incident was ignored as a test credential, and it now has an "
                f"occurrence outside test paths: {_quoted(offending.filepath)} "
                f"({len(occurrences)} occurrence(s) seen).",
                reopen,
            ))
            continue
        skips.append(Skip(
            incident_id, "still_test_credential",
            f"validity {validity}; {len(occurrences)} occurrence(s) seen, all in test paths",
        ))
    return Plan(PLAYBOOK, tuple(decisions), tuple(skips))


def _judge(
    incident: Any,
    occurrences_by_incident: Mapping[int, Sequence[Any]],
    policy: AutoIgnorePolicy,
) -> Decision | Skip:
    incident_id = incident.id
    status = _text(incident.status)
    if status not in OPEN_STATUSES:
        return Skip(incident_id, "not_open", f"status is {status}")
    validity = _text(incident.validity)
    if validity == "valid" or validity not in policy.validities:
        return Skip(incident_id, "validity_not_allowed", f"validity is {validity}")
    vetoes = _veto_tags(incident, policy)
    if vetoes:
        return Skip(incident_id, "veto_tag", f"incident tagged {', '.join(vetoes)}")
    outside = _outside_filters(incident, policy)
    if outside:
        return Skip(incident_id, "filtered_out", outside)

    # Every occurrence the API returned, before this playbook's own filters: one it vetoes is
    # a veto_tag skip that says so, never counted as unseen.
    occurrences = _own_occurrences(incident_id, occurrences_by_incident)
    expected = incident.occurrences_count
    if not occurrences and expected == 0:
        return Skip(incident_id, "no_occurrences", "the incident lists no occurrence")
    vetoes = set(policy.veto_tags) | set(ALWAYS_VETO)
    vetoed = [(o, sorted(t for t in set(_tags(o)) if t in vetoes)) for o in occurrences]
    vetoed = [(o, tags) for o, tags in vetoed if tags]
    if vetoed:
        first, tags = vetoed[0]
        return Skip(
            incident_id, "veto_tag",
            f"occurrence {first.id} tagged {', '.join(tags)} ({len(vetoed)} of "
            f"{len(occurrences)} returned occurrence(s) vetoed by the policy's veto tags)",
        )
    gap = occurrence_gap(expected, occurrences)
    if gap is not None:
        return Skip(incident_id, gap.reason, gap.evidence)
    if policy.sources:
        names = {_source_name(o) or "(unknown source)" for o in occurrences}
        foreign = sorted(names - set(policy.sources))
        if foreign:
            return Skip(
                incident_id, "filtered_out", f"occurrence in source {printable(foreign[0])}"
            )
    null = next((o for o in occurrences if not o.filepath), None)
    if null is not None:
        return Skip(incident_id, "null_path", f"occurrence {null.id} has no file path")
    offending = _first_non_test(occurrences, policy)
    if offending is not None:
        return Skip(
            incident_id, "production_path", f"{_quoted(offending.filepath)} is not a test path"
        )

    globs = sorted({g for o in occurrences if (g := matching_glob(o.filepath, policy.test_globs))})
    by_tag = sum(1 for o in occurrences if matching_glob(o.filepath, policy.test_globs) is None)
    rule = f"every path matches a test-path glob ({', '.join(globs)})" if globs else ""
    if by_tag:
        tagged_rule = f"carries GitGuardian's {TEST_FILE_TAG} tag ({by_tag} occurrence(s))"
        rule = f"{rule} or {tagged_rule}" if rule else tagged_rule
    shown = ", ".join(_quoted(o.filepath) for o in occurrences[:EVIDENCE_PATHS])
    extra = len(occurrences) - EVIDENCE_PATHS
    more = f" and {extra} more" if extra > 0 else ""
    return Decision(
        PLAYBOOK, incident_id, Action.IGNORE, {"ignore_reason": IGNORE_REASON},
        "all_occurrences_in_test_paths",
        f"All {len(occurrences)} occurrence(s) are in test paths: {shown}{more}. "
        f"Validity: {validity}. Rule: {rule}.",
        Precondition(statuses=OPEN_STATUSES),
    )


def _is_test_occurrence(occurrence: Any, policy: AutoIgnorePolicy) -> bool:
    if not occurrence.filepath:
        return False  # unknown location: never evidence of a test file, whatever the tags
    if matching_glob(occurrence.filepath, policy.test_globs) is not None:
        return True
    return policy.trust_test_file_tag and TEST_FILE_TAG in _tags(occurrence)


def _first_non_test(occurrences: Sequence[Any], policy: AutoIgnorePolicy) -> Any | None:
    return next((o for o in occurrences if not _is_test_occurrence(o, policy)), None)


def _veto_tags(incident: Any, policy: AutoIgnorePolicy) -> list[str]:
    vetoes = set(policy.veto_tags) | set(ALWAYS_VETO)
    return sorted(t for t in set(_tags(incident)) if t in vetoes)


def _outside_filters(incident: Any, policy: AutoIgnorePolicy) -> str:
    severity = _text(incident.severity)
    if policy.severities and severity not in policy.severities:
        return f"severity {severity} not in {', '.join(policy.severities)}"
    if policy.detectors:
        detector = incident.detector
        names = {getattr(detector, "name", None), getattr(detector, "detector_group_name", None)}
        if not names & set(policy.detectors):
            return f"detector {printable(getattr(detector, 'name', None))} not selected"
    return ""


def _own_occurrences(
    incident_id: int, occurrences_by_incident: Mapping[int, Sequence[Any]]
) -> list[Any]:
    """This incident's occurrences, each once, in id order (a bulk listing read page by page
    can repeat an occurrence, and the grouping is re-checked rather than trusted)."""
    listed = occurrences_by_incident.get(incident_id, ())
    unique = {o.id: o for o in listed if o.incident_id == incident_id}
    return [unique[k] for k in sorted(unique)]


def _by_id(incidents: Iterable[Any]) -> list[Any]:
    unique = {i.id: i for i in incidents}
    return [unique[k] for k in sorted(unique)]


def _tags(item: Any) -> list[str]:
    return [_text(t) for t in (getattr(item, "tags", None) or ())]


def _source_name(occurrence: Any) -> str | None:
    source = getattr(occurrence, "source", None)
    return getattr(source, "full_name", None) if source is not None else None


def _text(value: Any) -> str:
    """Enum members and raw strings alike (the models keep unknown enum values as strings)."""
    return str(value.value) if isinstance(value, Enum) else str(value)


def _quoted(path: str | None) -> str:
    return f"'{printable(path)}'"


NOTE_BUDGET = note_budget(PLAYBOOK)  # the API's 10,000 characters, less the marker


def render_note(decision: Decision) -> str:
    """The note that explains an ignore or a reopen; the write path appends its own marker."""
    if decision.action is Action.IGNORE:
        text = f"Ignored as a test credential by the {PLAYBOOK} playbook. {decision.evidence}"
    else:
        text = f"{decision.evidence} (recheck of the {PLAYBOOK} playbook)"
    return clip(text, NOTE_BUDGET)
