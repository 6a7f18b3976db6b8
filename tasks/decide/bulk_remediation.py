"""Ad-hoc bulk remediation: one action, with one reason, on a filtered set of incidents. Pure.

The request is one pydantic model (`BulkRequest`) so the Prefect UI shows a typed form: a
selection (the API's incident filters plus client-side conditions the API lacks), an action with
its arguments, and a mandatory reason that becomes the note on every incident.

Choices documented here because the issue left them open:
- API filters are validated by the client's own validation (`clients.gitguardian.build_query`)
  before any request: an unknown filter is an error, never an empty filter. The checkable ones
  (status, severity, validity, assignee, detector group, risk score) are re-checked on the
  answers, because a server that ignored a filter would otherwise select everything.
- Occurrence conditions (path globs, author e-mails, source names): with `path_mode="all"`
  (the default) every occurrence's path must match a glob, so a bulk write never touches an
  incident that also leaks outside the paths named; author and source match when any occurrence
  matches. An incident whose occurrences were not fetched is skipped, never guessed.
- An incident already as the action wants it (resolve a resolved one, reopen an open one) is
  skipped as `already_done`, so a re-run plans nothing new. Writes check, at write time, that
  the incident is still in the status and with the assignee the plan saw.
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
- Offboarding ("assign" with `to_manager`): the incident goes to the current assignee's manager
  when the directory names one who is an active member, else to `assignee_email` (the named
  successor), else it is skipped as `no_successor`. A manager lookup that could not tell (the
  person's entry or the manager's failed, was ambiguous or truncated) skips the incident as
  `manager_lookup_error`: never the named successor instead.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clients.models import CLOSED_STATUSES, OPEN_STATUSES, IncidentStatus, Severity, Validity
from tasks.decide.coverage import occurrence_gap
from tasks.decide.evidence import MANAGER_LOOKUP_ERROR, Evidence
from tasks.decide.identity import is_bot_or_noreply, normalise_email
from tasks.decide.notes import clip, note_budget
from tasks.decide.paths import (
    matches_everything,
    matching_glob,
    path_segments,
    printable,
    validate_glob,
)
from tasks.decide.plan import RESTORE_HUMAN_CHANGES_HELP, Action, Decision, Plan, Precondition, Skip

PLAYBOOK = "bulk-remediation"

# Skip reasons, stable: the plan table and the ledger use them.
SKIP_ALREADY_DONE = "already_done"
SKIP_NOT_APPLICABLE = "status_not_applicable"
SKIP_NO_OCCURRENCES = "occurrences_missing"
SKIP_NO_SUCCESSOR = "no_successor"
SKIP_SAME_ASSIGNEE = "successor_is_assignee"
SKIP_MANAGER_LOOKUP_ERROR = MANAGER_LOOKUP_ERROR  # to_manager: the directory could not tell

NOTE_BUDGET = note_budget(PLAYBOOK)  # the API's 10,000 characters, less the marker

# GitGuardian started in 2017: no incident is older, so a lower date bound before this narrows
# nothing that could exist (an upper bound after now narrows nothing either).
EARLIEST_INCIDENT = datetime(2017, 1, 1, tzinfo=UTC)
# The API filters on time: on the incident's `date` (checked on the workspace by the flow) and
# on `triggered_at` (only the static check above).
_DATE_FILTERS = {"date_after": "date", "date_before": "date",
                 "triggered_at_after": "triggered_at", "triggered_at_before": "triggered_at"}
_NARROWS_NOTHING = {"ordering"}  # an API filter that only orders the answers
# Access levels whose member endpoint lists their own incidents (and those shared with them):
# managers and owners see every incident there.
MEMBER_ENDPOINT_LEVELS = ("member", "restricted")
_REASON_MAX_CHARS = 4_000

def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


StatusName = Literal["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"]
SeverityName = Literal["critical", "high", "medium", "low", "info", "unknown"]
ValidityName = Literal["valid", "invalid", "failed_to_check", "no_checker", "unknown"]
IgnoreReasonName = Literal["test_credential", "false_positive", "low_risk", "invalid"]


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
                    k: v for k, v in self.api_filters.items() if k not in _DATE_FILTERS
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
            _DATE_FILTERS.get(name) == "triggered_at" and not _date_bound_is_void(name, value, now)
            for name, value in self.api_filters.items()
        )


ActionName = Literal["assign", "unassign", "resolve", "ignore", "reopen", "share", "note"]


class BulkAction(BaseModel):
    """What to do to every selected incident, and the action's arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ActionName = Field(
        description="assign, unassign, resolve, ignore, reopen, share, or note (only the note)."
    )
    assignee_email: str | None = Field(
        None,
        description="assign: the member who receives the incidents (with to_manager: the named "
        "successor used when the directory names no manager).",
    )
    to_manager: bool = Field(
        False,
        description="assign: give each incident to its current assignee's manager per the "
        "directory (LDAP_URL or DIRECTORY_JSON); falls back to assignee_email.",
    )
    send_email: bool = Field(False, description="assign: let GitGuardian e-mail the new assignee.")
    secret_revoked: bool = Field(
        False, description="resolve: the secret was revoked (true) or not (false)."
    )
    ignore_reason: IgnoreReasonName | None = Field(
        None, description="ignore: test_credential, false_positive, low_risk or invalid."
    )
    auto_healing: bool = Field(False, description="share: let the developer resolve it.")
    feedback_collection: bool = Field(True, description="share: ask the developer for feedback.")
    lifespan_hours: int = Field(
        0, ge=0, le=8760, description="share: hours the link lives; 0 = the workspace default."
    )

    @field_validator("assignee_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        email = normalise_email(value)
        if not email:
            return None
        if "@" not in email:
            raise ValueError(f"{email!r} is not an e-mail address")
        return email

    @model_validator(mode="after")
    def _arguments(self) -> BulkAction:
        if self.kind == "assign" and not (self.assignee_email or self.to_manager):
            raise ValueError("assign needs assignee_email, to_manager, or both")
        if self.kind != "assign" and (self.assignee_email or self.to_manager):
            raise ValueError("assignee_email and to_manager only go with assign")
        if self.kind == "ignore" and not self.ignore_reason:
            raise ValueError("ignore needs an ignore_reason")
        if self.kind != "ignore" and self.ignore_reason:
            raise ValueError("ignore_reason only goes with ignore")
        return self

    @property
    def action(self) -> Action:
        return Action(self.kind)

    def arguments(self) -> dict[str, Any]:
        """The write path's arguments for this action (tasks/act.py `_perform`)."""
        match self.kind:
            case "assign":
                return {"email": self.assignee_email, "send_email": self.send_email}
            case "resolve":
                return {"secret_revoked": self.secret_revoked}
            case "ignore":
                return {"ignore_reason": self.ignore_reason}
            case "share":
                return {
                    "auto_healing": self.auto_healing,
                    "feedback_collection": self.feedback_collection,
                    "lifespan_hours": self.lifespan_hours,
                }
        return {}

    @property
    def scopes(self) -> tuple[str, ...]:
        if self.kind == "share":
            return ("incidents:read", "incidents:share")
        if self.kind == "assign":
            return ("incidents:read", "incidents:write", "members:read")
        return ("incidents:read", "incidents:write")


class BulkRequest(BaseModel):
    """A one-off bulk action: the selection, the action, the reason written on every incident."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    restore_human_changes: bool = Field(False, description=RESTORE_HUMAN_CHANGES_HELP)
    selection: BulkSelection = Field(
        default_factory=BulkSelection,
        description="Which incidents: API filters and client-side conditions, e.g. "
        '{"status": ["TRIGGERED", "ASSIGNED"], "detector_group_name": "generic_password"}. '
        "A selection without a filter matches every incident and needs confirm_all.",
    )
    action: BulkAction = Field(
        description="What to do to each selected incident, e.g. "
        '{"kind": "ignore", "ignore_reason": "false_positive"}, {"kind": "resolve", '
        '"secret_revoked": true} or {"kind": "assign", "to_manager": true, '
        '"assignee_email": "successor@corp.example"}.'
    )
    reason: str = Field(
        min_length=1,
        max_length=_REASON_MAX_CHARS,
        description="Why: written as the note on every incident acted on. Mandatory.",
    )
    confirm_all: bool = Field(
        False, description="Allow a selection that matches every incident of the workspace."
    )

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the reason must not be blank: it becomes the note on every incident")
        return value.strip()


class RefusedRequest(ValueError):
    """A bulk request that must not run as given; the message says what to change."""


UNFILTERED_REFUSAL = (
    "the selection has no filter that excludes anything and would match every incident{why}: "
    "add a filter, or set confirm_all to act on the whole workspace"
)


def check_request(request: BulkRequest, *, now: datetime | None = None) -> None:
    """Everything that can be refused before any request: RefusedRequest or ValueError."""
    if not request.reason.strip():  # also covers model_construct, which skips validation
        raise RefusedRequest("the reason must not be blank: it becomes the note on every incident")
    request.selection.validate_api_filters()
    if request.selection.is_unfiltered(now) and not request.confirm_all:
        selection = request.selection
        why = []
        if selection.path_globs:
            why.append(f"(path_globs {selection.path_globs} match every production-looking path)")
        if any(name in _DATE_FILTERS for name in selection.api_filters) or selection.max_age_days:
            why.append("(its date bounds exclude no incident that could exist)")
        raise RefusedRequest(UNFILTERED_REFUSAL.format(why=" " + " ".join(why) if why else ""))


def check_dates_exclude(
    request: BulkRequest, oldest: datetime | None, newest: datetime | None, *, now: datetime
) -> None:
    """RefusedRequest when the selection's only conditions are date bounds and they exclude no
    incident of the workspace: `oldest` and `newest` are the `date`s of the first and last
    incident the selection matches without its date bounds (None: the workspace has none)."""
    selection = request.selection
    if request.confirm_all or not selection.narrowed_by_dates_only(now):
        return
    lower, upper = _date_window(selection, now)
    excludes = (
        oldest is not None
        and newest is not None
        and ((lower is not None and oldest < lower) or (upper is not None and newest > upper))
    )
    if not excludes:
        span = (
            f"its incidents date from {oldest:%Y-%m-%d} to {newest:%Y-%m-%d}"
            if oldest is not None and newest is not None
            else "it has no incident"
        )
        raise RefusedRequest(
            UNFILTERED_REFUSAL.format(
                why=f" (its date bounds exclude no incident of this workspace: {span})"
            )
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
    if name not in _DATE_FILTERS:
        return False
    when = _as_time(value)
    if when is None:
        return False  # not a time: the client's validation refuses it
    return when < EARLIEST_INCIDENT if name.endswith("_after") else when > now


def _date_window(
    selection: BulkSelection, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The tightest (lower, upper) bounds on the incident's `date` the selection sets."""
    lowers, uppers = [], []
    for name, value in selection.api_filters.items():
        when = _as_time(value)
        if _DATE_FILTERS.get(name) == "date" and when is not None:
            (lowers if name.endswith("_after") else uppers).append(when)
    if selection.max_age_days is not None:
        lowers.append(now - timedelta(days=selection.max_age_days))
    if selection.min_age_days:
        uppers.append(now - timedelta(days=selection.min_age_days))
    return (max(lowers) if lowers else None), (min(uppers) if uppers else None)


# --------------------------------------------------------------------------- selection


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


# --------------------------------------------------------------------------- decide


def _not_applicable(incident: Any, action: BulkAction) -> Skip | None:
    status = incident.status
    kind = action.kind
    if (kind, status) in (("resolve", "RESOLVED"), ("ignore", "IGNORED")):
        return Skip(incident.id, SKIP_ALREADY_DONE, f"already {status}")
    if kind == "reopen" and status in OPEN_STATUSES:
        return Skip(incident.id, SKIP_ALREADY_DONE, f"already open ({status})")
    share_url = getattr(incident, "share_url", None)
    if kind == "share" and share_url is not None and share_url.get_secret_value():
        return Skip(incident.id, SKIP_ALREADY_DONE, "already shared")
    if kind == "unassign" and status == "TRIGGERED" and not incident.assignee_email:
        return Skip(incident.id, SKIP_ALREADY_DONE, "already unassigned")
    if kind in ("assign", "unassign", "resolve", "ignore") and status not in OPEN_STATUSES:
        return Skip(
            incident.id, SKIP_NOT_APPLICABLE, f"{kind} needs an open incident, it is {status}"
        )
    if kind == "reopen" and status not in CLOSED_STATUSES:
        return Skip(
            incident.id, SKIP_NOT_APPLICABLE, f"reopen needs a closed incident, it is {status}"
        )
    return None


def _successor(
    incident: Any,
    action: BulkAction,
    managers: Mapping[str, str | Evidence[str]],
    active_members: Mapping[str, int] | None,
) -> tuple[str | None, str | Evidence]:
    """(e-mail, provenance) of who receives the incident; (None, why) when nobody can, or
    (None, the unknown) when the manager lookup could not tell."""

    def usable(email: str | None) -> bool:
        return (
            bool(email)
            and not is_bot_or_noreply(email)
            and (active_members is None or email in active_members)
        )

    current = normalise_email(incident.assignee_email)
    if action.to_manager:
        found = _manager_evidence(managers.get(current))
        if found.is_unknown:  # never the named successor instead: the manager may be fine
            return None, found
        manager = normalise_email(found.value)
        if found.is_yes and usable(manager) and manager != current:
            return manager, "manager"
    if action.assignee_email and usable(action.assignee_email):
        return action.assignee_email, "successor"
    if action.assignee_email:
        return None, f"{action.assignee_email} is not an active workspace member"
    return None, f"the directory names no active manager for {current or 'the assignee'}"


def _manager_evidence(value: str | Evidence[str] | None) -> Evidence[str]:
    """A manager as the flow found it: an e-mail (yes), nothing (no manager named), or the
    tri-state evidence itself (an unknown when the directory could not tell)."""
    if isinstance(value, Evidence):
        return value
    return Evidence.yes(value) if value else Evidence.no("no manager named")


def decide_bulk_remediation(
    incidents: Sequence[Any],
    occurrences_by_incident: Mapping[int, Sequence[Any]],
    request: BulkRequest,
    *,
    now: datetime | None = None,
    managers: Mapping[str, str | Evidence[str]] | None = None,
    members: Sequence[Any] | None = None,
) -> Plan:
    """The plan: one decision per selected incident the action still applies to.

    `managers`: normalised assignee e-mail -> manager e-mail, or tri-state Evidence of it
    (offboarding with to_manager): an unknown skips the incident (`manager_lookup_error`),
    never hands it to the named successor.
    `members`: the workspace members; when given, an assignee must be an active one, and is
    assigned by member id (a member's e-mail may differ from the directory's in case or spaces).
    """
    now = now or datetime.now(UTC)
    managers = {normalise_email(k): v for k, v in (managers or {}).items()}
    active = (
        {normalise_email(m.email): m.id for m in members if m.active is not False}
        if members is not None
        else None
    )
    action = request.action
    selected, skips = select(incidents, occurrences_by_incident, request.selection, now=now)
    decisions: list[Decision] = []
    for incident in selected:
        skip = _not_applicable(incident, action)
        if skip is not None:
            skips.append(skip)
            continue
        arguments = action.arguments()
        reason = "bulk_" + action.kind
        shown = ", ".join(f"{k}={v}" for k, v in sorted(arguments.items()))
        evidence = f"{action.kind}{f' ({shown})' if shown else ''} on {incident.status} incident"
        assignee = None
        if action.kind == "assign":
            email, provenance = _successor(incident, action, managers, active)
            if isinstance(provenance, Evidence):
                skips.append(provenance.skip(incident.id))
                continue
            if email is None:
                skips.append(Skip(incident.id, SKIP_NO_SUCCESSOR, provenance))
                continue
            if email == normalise_email(incident.assignee_email) and incident.status == "ASSIGNED":
                skips.append(Skip(incident.id, SKIP_SAME_ASSIGNEE, f"already assigned to {email}"))
                continue
            arguments, assignee = {**arguments, "email": email}, email
            if active is not None:
                arguments = {"member_id": active[email], "send_email": action.send_email}
            reason = f"bulk_assign_{provenance}"
            evidence = (
                f"assigned to {email} ({provenance}), was "
                f"{printable(incident.assignee_email) if incident.assignee_email else 'unassigned'}"
            )
        elif action.kind == "note":
            # The reason is part of the id: the same note is never written twice, a new one is.
            arguments = {"note_digest": hashlib.sha256(request.reason.encode()).hexdigest()[:12]}
        decisions.append(
            Decision(
                playbook=PLAYBOOK,
                incident_id=incident.id,
                action=action.action,
                arguments=arguments,
                reason=reason,
                evidence=evidence,
                shown_assignee=assignee,
                # Written only if nobody changed the incident since the plan was made.
                precondition=Precondition(
                    statuses=(incident.status,),
                    assignee_email=incident.assignee_email,
                    check_assignee=True,
                ),
            )
        )
    return Plan(PLAYBOOK, tuple(decisions), tuple(skips))


def render_note(decision: Decision, request: BulkRequest) -> str:
    """The note written on each incident: the operator's reason, then what was done."""
    done = f"Bulk remediation: {decision.evidence}."
    if decision.action is Action.NOTE:
        done = "Bulk remediation note."
    done = clip(done, 500)
    return f"{clip(request.reason, NOTE_BUDGET - len(done) - 2)}\n\n{done}"
