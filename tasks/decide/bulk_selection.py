"""Which incidents a bulk request acts on: the selection model and its check. Pure.

Part of the bulk-remediation playbook (tasks/decide/bulk_remediation.py holds the request, its
refusals and the decide). Choices documented here because the issue left them open:
- API filters are validated by the client's own validation (`clients.gitguardian.build_query`)
  before any request: an unknown filter is an error, never an empty filter. The checkable ones
  (status, severity, validity, assignee, detector group, risk score) are re-checked on the
  answers, because a server that ignored a filter would otherwise select everything.
- Occurrence conditions (path globs, author e-mails, source names): with `path_mode="all"`
  (the default) every occurrence's path must match a glob, so a bulk write never touches an
  incident that also leaks outside the paths named; author and source match when any occurrence
  matches. An incident whose occurrences were not fetched is skipped, never guessed.
- "Unfiltered" is decided by what a selection lets through, not by how it is spelt: no
  condition at all; status/severity/validity lists naming every value; bounds that let
  everything through (risk 0..100, at least 0 days old); path globs that match every
  production-looking path (`tasks/decide/paths.py`, `**/*` and its kin); date bounds no incident
  could fall outside (before GitGuardian existed, after now); and, checked in the flow on the
  workspace itself, date bounds that exclude none of its incidents. Such a selection needs
  `confirm_all`.
- `path_mode="all"` is a claim about every occurrence: an incident whose `occurrences_count` is
  unknown or differs from the occurrences returned is skipped (tasks/decide/coverage.py).
- Listing a person's incidents (`assignee_emails`): one listing per address. Where the
  members are listed anyway (assign actions) and the address is a member of access level
  `member` or `restricted`, that listing is the member's own endpoint
  (`/v1/members/{id}/secret-incidents`, with the selection's filters and `assignee_id`): it
  lists what the member can see, which for those levels is their incidents and the few shared
  with them, where the workspace-wide list must find them among every incident. Managers and
  owners see every incident, so for them (and for an address no member has) the incident list
  with the assignee filter is used. Either way the assignee is re-checked on the answers. The
  write path's safety reads of a one-person selection list with the same filters
  (`read_filters`), so each chunk's listing holds that person's incidents only.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clients.models import IncidentStatus, Severity, Validity
from tasks.decide.coverage import occurrence_gap
from tasks.decide.identity import normalise_email
from tasks.decide.paths import matches_everything, matching_glob, path_segments, validate_glob
from tasks.decide.plan import Skip

SKIP_NO_OCCURRENCES = "occurrences_missing"  # a skip reason of the playbook (stable)

# GitGuardian started in 2017: no incident is older, so a lower date bound before this narrows
# nothing that could exist (an upper bound after now narrows nothing either).
EARLIEST_INCIDENT = datetime(2017, 1, 1, tzinfo=UTC)
# The API filters on time: on the incident's `date` (checked on the workspace by the flow) and
# on `triggered_at` (only the static check above).
DATE_FILTERS = {"date_after": "date", "date_before": "date",
                 "triggered_at_after": "triggered_at", "triggered_at_before": "triggered_at"}
_NARROWS_NOTHING = {"ordering"}  # an API filter that only orders the answers
# Access levels whose member endpoint lists their own incidents (and those shared with them):
# managers and owners see every incident there.
MEMBER_ENDPOINT_LEVELS = ("member", "restricted")

def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


StatusName = Literal["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"]
SeverityName = Literal["critical", "high", "medium", "low", "info", "unknown"]
ValidityName = Literal["valid", "invalid", "failed_to_check", "no_checker", "unknown"]


class BulkSelection(BaseModel):
    """Which incidents the bulk action applies to: API filters, then client-side conditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: list[StatusName] = Field(
        default_factory=list,
        description="Incident statuses to select (API filter), e.g. TRIGGERED, ASSIGNED. "
        "Empty: any status.",
    )
    severity: list[SeverityName] = Field(
        default_factory=list, description="Severities to select (API filter). Empty: any."
    )
    validity: list[ValidityName] = Field(
        default_factory=list,
        description="Secret validity to select (API filter), e.g. invalid. Empty: any.",
    )
    detector_group_name: str | None = Field(
        None, description="Detector group, e.g. generic_password (API filter)."
    )
    assignee_emails: list[str] = Field(
        default_factory=list,
        description="Incidents assigned to any of these e-mails (API filter, one listing per "
        "address; compared case-insensitively).",
    )
    risk_score_min: int | None = Field(
        None, ge=0, le=100, description="Lowest risk score (API filter)."
    )
    risk_score_max: int | None = Field(
        None, ge=0, le=100, description="Highest risk score (API filter)."
    )
    api_filters: dict[str, Any] = Field(
        default_factory=dict,
        description="Any other incident filter of the GitGuardian API by its name, e.g. "
        '{"tags": ["TEST_FILE"], "date_after": "2026-01-01"}. An unknown name is an error.',
    )
    path_globs: list[str] = Field(
        default_factory=list,
        description="Occurrence paths to match, by path segments: '**/tests/**', "
        "'config/*.env'. See path_mode.",
    )
    path_mode: Literal["all", "any"] = Field(
        "all",
        description="all: every occurrence's path must match a glob (safe default); "
        "any: one matching occurrence is enough.",
    )
    author_emails: list[str] = Field(
        default_factory=list,
        description="Commit author e-mails: an incident matches when one of its occurrences "
        "has one of them (compared case-insensitively, never by substring).",
    )
    source_names: list[str] = Field(
        default_factory=list,
        description="Source full names, e.g. acme/payments-api: an incident matches when one of "
        "its occurrences is in one of them (case-insensitive).",
    )
    min_age_days: int | None = Field(
        None, ge=0, description="Only incidents first seen at least this many days ago."
    )
    max_age_days: int | None = Field(
        None, ge=0, description="Only incidents first seen at most this many days ago."
    )

    @field_validator("path_globs")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        return [validate_glob(g) for g in value]

    @field_validator("assignee_emails", "author_emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        emails = [normalise_email(v) for v in value if normalise_email(v)]
        for email in emails:
            if "@" not in email:
                raise ValueError(f"{email!r} is not an e-mail address")
        return sorted(set(emails))

    @field_validator("source_names")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        return sorted({v.strip().casefold() for v in value if v.strip()})

    @model_validator(mode="after")
    def _consistent(self) -> BulkSelection:
        overlap = set(self.api_filters) & {
            "status",
            "severity",
            "validity",
            "detector_group_name",
            "assignee_email",
            "risk_score_min",
            "risk_score_max",
            "per_page",
        }
        if overlap:
            raise ValueError(
                f"set {', '.join(sorted(overlap))} with its own field, not in api_filters"
            )
        if self.min_age_days is not None and self.max_age_days is not None:
            if self.min_age_days > self.max_age_days:
                raise ValueError("min_age_days is above max_age_days: nothing could match")
        return self

    def api_queries(self) -> list[dict[str, Any]]:
        """The incident listings to make: one per assignee e-mail, else one."""
        base: dict[str, Any] = dict(self.api_filters)
        for name in ("status", "severity", "validity"):
            if getattr(self, name):
                base[name] = list(getattr(self, name))
        for name in ("detector_group_name", "risk_score_min", "risk_score_max"):
            if getattr(self, name) is not None:
                base[name] = getattr(self, name)
        if not self.assignee_emails:
            return [base]
        return [{**base, "assignee_email": email} for email in self.assignee_emails]

    def listings(
        self, members: Sequence[Any] | None = None
    ) -> list[tuple[int | None, dict[str, Any]]]:
        """The listings to make, as (member id, query): a member id means that member's own
        endpoint (`members` known, an address of a `member`/`restricted` member: see the
        module's text), None the workspace-wide incident list."""
        queries = self.api_queries()
        if not self.assignee_emails or members is None:
            return [(None, query) for query in queries]
        by_email = {normalise_email(_field(m, "email")): m for m in members}
        listings: list[tuple[int | None, dict[str, Any]]] = []
        for query in queries:
            member = by_email.get(query["assignee_email"])
            level = str(_field(member, "access_level") or "") if member is not None else ""
            if member is not None and level in MEMBER_ENDPOINT_LEVELS:
                own = {k: v for k, v in query.items() if k != "assignee_email"}
                member_id = int(_field(member, "id"))
                listings.append((member_id, {**own, "assignee_id": member_id}))
            else:
                listings.append((None, query))
        return listings

    def read_filters(self) -> dict[str, Any]:
        """The API filters the write path's safety reads may list with: the selection's one
        query without its status (the chunk lists its own), or none for several listings."""
        queries = self.api_queries()
        if len(queries) != 1:
            return {}
        return {k: v for k, v in queries[0].items() if k not in ("status", "ordering")}

    def validate_api_filters(self) -> None:
        """ValueError, naming the filter, before any request (the client's own validation)."""
        from clients.gitguardian import _INCIDENT_FILTERS, build_query

        for query in self.api_queries():
            build_query("incidents", _INCIDENT_FILTERS, query, 100)

    @property
    def needs_occurrences(self) -> bool:
        return bool(self.path_globs or self.author_emails or self.source_names)

    def is_unfiltered(self, now: datetime | None = None) -> bool:
        """True when the selection would match every incident of the workspace, whatever its
        spelling (see the module's text); date bounds are judged against what could exist."""
        now = now or datetime.now(UTC)
        every = {
            "status": set(IncidentStatus),
            "severity": set(Severity),
            "validity": set(Validity),
        }
        narrowing_lists = [
            name
            for name, values in every.items()
            if getattr(self, name) and not values <= set(getattr(self, name))
        ]
        # Bounds that let everything through narrow nothing: risk 0..100, "at least 0 days old".
        narrowing_bounds = (
            self.detector_group_name is not None,
            self.risk_score_min not in (None, 0),
            self.risk_score_max not in (None, 100),
            self.min_age_days not in (None, 0),
            self.max_age_days is not None
            and now - timedelta(days=self.max_age_days) > EARLIEST_INCIDENT,
        )
        narrowing_api = [
            name
            for name, value in self.api_filters.items()
            if name not in _NARROWS_NOTHING and not _date_bound_is_void(name, value, now)
        ]
        narrowing_paths = bool(self.path_globs) and not matches_everything(self.path_globs)
        return not (
            narrowing_lists
            or any(narrowing_bounds)
            or self.assignee_emails
            or narrowing_api
            or narrowing_paths
            or self.author_emails
            or self.source_names
        )

    def undated(self) -> BulkSelection:
        """This selection without its date and age bounds."""
        return self.model_copy(
            update={
                "api_filters": {
                    k: v for k, v in self.api_filters.items() if k not in DATE_FILTERS
                },
                "min_age_days": None,
                "max_age_days": None,
            }
        )

    def narrowed_by_dates_only(self, now: datetime | None = None) -> bool:
        """True when only date bounds on the incident's `date` (and age bounds) keep this
        selection from matching everything: whether they exclude anything depends on the
        workspace (`check_dates_exclude`)."""
        now = now or datetime.now(UTC)
        if self.is_unfiltered(now) or not self.undated().is_unfiltered(now):
            return False
        return not any(
            DATE_FILTERS.get(name) == "triggered_at" and not _date_bound_is_void(name, value, now)
            for name, value in self.api_filters.items()
        )


def _as_time(value: Any) -> datetime | None:
    """An API date filter's value as an aware time (a bare date: its midnight, UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


def _date_bound_is_void(name: str, value: Any, now: datetime) -> bool:
    """True for a date bound no incident could fall outside."""
    if name not in DATE_FILTERS:
        return False
    when = _as_time(value)
    if when is None:
        return False  # not a time: the client's validation refuses it
    return when < EARLIEST_INCIDENT if name.endswith("_after") else when > now


def date_window(
    selection: BulkSelection, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The tightest (lower, upper) bounds on the incident's `date` the selection sets."""
    lowers, uppers = [], []
    for name, value in selection.api_filters.items():
        when = _as_time(value)
        if DATE_FILTERS.get(name) == "date" and when is not None:
            (lowers if name.endswith("_after") else uppers).append(when)
    if selection.max_age_days is not None:
        lowers.append(now - timedelta(days=selection.max_age_days))
    if selection.min_age_days:
        uppers.append(now - timedelta(days=selection.min_age_days))
    return (max(lowers) if lowers else None), (min(uppers) if uppers else None)



def _age_days(incident: Any, now: datetime) -> float:
    return (now - incident.date) / timedelta(days=1)


def _api_conditions_hold(incident: Any, selection: BulkSelection) -> bool:
    """The checkable API filters, re-checked: a server that ignores one must not widen the set."""
    if selection.status and incident.status not in selection.status:
        return False
    if selection.severity and incident.severity not in selection.severity:
        return False
    if selection.validity and incident.validity not in selection.validity:
        return False
    if selection.detector_group_name is not None:
        group = getattr(incident.detector, "detector_group_name", None)
        if group != selection.detector_group_name:
            return False
    if selection.assignee_emails:
        if normalise_email(incident.assignee_email) not in selection.assignee_emails:
            return False
    risk = incident.risk_score
    if selection.risk_score_min is not None and (risk is None or risk < selection.risk_score_min):
        return False
    if selection.risk_score_max is not None and (risk is None or risk > selection.risk_score_max):
        return False
    return True


def _occurrence_conditions_hold(occurrences: Sequence[Any], selection: BulkSelection) -> bool:
    if selection.path_globs:
        matches = [
            bool(path_segments(o.filepath))
            and matching_glob(o.filepath, selection.path_globs) is not None
            for o in occurrences
        ]
        combine = all if selection.path_mode == "all" else any
        if not matches or not combine(matches):
            return False
    if selection.author_emails:
        if not any(normalise_email(o.author_info) in selection.author_emails for o in occurrences):
            return False
    if selection.source_names:
        names = {
            (o.source.full_name or "").casefold() for o in occurrences if getattr(o, "source", None)
        }
        if not names & set(selection.source_names):
            return False
    return True


def select(
    incidents: Sequence[Any],
    occurrences_by_incident: Mapping[int, Sequence[Any]],
    selection: BulkSelection,
    *,
    now: datetime,
) -> tuple[list[Any], list[Skip]]:
    """The incidents that meet every condition (deduplicated, by id), and those left unknown.

    An incident without fetched occurrences, when a condition needs them, is returned as a
    Skip: it was selected by the API but cannot be checked.
    """
    chosen: dict[int, Any] = {}
    unknown: list[Skip] = []
    for incident in incidents:
        if incident.id in chosen or not _api_conditions_hold(incident, selection):
            continue
        age = _age_days(incident, now)
        if selection.min_age_days is not None and age < selection.min_age_days:
            continue
        if selection.max_age_days is not None and age > selection.max_age_days:
            continue
        if selection.needs_occurrences:
            listed = occurrences_by_incident.get(incident.id) or ()
            occurrences = list({o.id: o for o in listed}.values())
            if not occurrences:
                unknown.append(Skip(incident.id, SKIP_NO_OCCURRENCES, "no occurrence to check"))
                continue
            if not _occurrence_conditions_hold(occurrences, selection):
                continue
            if selection.path_globs and selection.path_mode == "all":
                # "Every path matches" holds for what was returned: only all of them will do.
                gap = occurrence_gap(getattr(incident, "occurrences_count", None), occurrences)
                if gap is not None:
                    unknown.append(Skip(incident.id, gap.reason, gap.evidence))
                    continue
        chosen[incident.id] = incident
    return sorted(chosen.values(), key=lambda i: i.id), unknown
