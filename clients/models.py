"""Typed answers of GitGuardian's public API v1 (pydantic v2). Plain Python, no Prefect.

Attribute names are the API's field names. Unknown fields are kept (`extra="allow"`) because
the API grows; enum-like fields are plain `str` so a value GitGuardian adds tomorrow is kept as
its raw string instead of failing a whole page. Known values are the StrEnum constants below.
Times are aware UTC datetimes. Share URLs are secrets: they are `SecretStr`, hidden from repr,
logs and dumps.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr


def _as_utc(value: datetime) -> datetime:
    # The API always sends "Z"; a naive time can only come from a fake, and means UTC there too.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

# The API refuses a note comment longer than this. What a playbook's note may hold once the
# write path has added its marker: tasks/decide/notes.py.
NOTE_MAX_CHARS = 10_000


class IncidentStatus(StrEnum):
    TRIGGERED = "TRIGGERED"
    ASSIGNED = "ASSIGNED"
    RESOLVED = "RESOLVED"
    IGNORED = "IGNORED"


# The one home of "open" and "closed", for the client, the playbooks and the sandbox. Tuples of
# the plain values, in this order: they compare, print and serialise as the API's strings.
OPEN_STATUSES: tuple[str, ...] = (IncidentStatus.TRIGGERED.value, IncidentStatus.ASSIGNED.value)
CLOSED_STATUSES: tuple[str, ...] = (IncidentStatus.RESOLVED.value, IncidentStatus.IGNORED.value)


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    UNKNOWN = "unknown"


class Validity(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    FAILED_TO_CHECK = "failed_to_check"
    NO_CHECKER = "no_checker"
    UNKNOWN = "unknown"


class IgnoreReason(StrEnum):
    TEST_CREDENTIAL = "test_credential"
    FALSE_POSITIVE = "false_positive"
    LOW_RISK = "low_risk"
    INVALID = "invalid"


class Tag(StrEnum):
    DEFAULT_BRANCH = "DEFAULT_BRANCH"
    FROM_HISTORICAL_SCAN = "FROM_HISTORICAL_SCAN"
    PUBLIC = "PUBLIC"
    PUBLICLY_EXPOSED = "PUBLICLY_EXPOSED"
    PUBLICLY_LEAKED = "PUBLICLY_LEAKED"
    REGRESSION = "REGRESSION"
    SENSITIVE_FILE = "SENSITIVE_FILE"
    TEST_FILE = "TEST_FILE"
    FALSE_POSITIVE = "FALSE_POSITIVE"
    VAULTED = "VAULTED"
    REVOCABLE_BY_GG = "REVOCABLE_BY_GG"
    CHECK_RUN_SKIP_FALSE_POSITIVE = "CHECK_RUN_SKIP_FALSE_POSITIVE"
    CHECK_RUN_SKIP_LOW_RISK = "CHECK_RUN_SKIP_LOW_RISK"
    CHECK_RUN_SKIP_TEST_CRED = "CHECK_RUN_SKIP_TEST_CRED"
    IGNORED_IN_CHECK_RUN = "IGNORED_IN_CHECK_RUN"


class Presence(StrEnum):
    PRESENT = "present"
    REMOVED = "removed"


class AccessLevel(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    MEMBER = "member"
    RESTRICTED = "restricted"


class ApiModel(BaseModel):
    """Base of every answer: unknown fields kept, values not coerced beyond pydantic's lax mode."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Detector(ApiModel):
    name: str
    display_name: str | None = None
    nature: str | None = None
    family: str | None = None
    category: str | None = None
    detector_group_name: str | None = None
    detector_group_display_name: str | None = None


class PublicExposure(ApiModel):
    source_publicly_visible: bool | None = None
    public_incident_linked: bool | None = None
    leaked_outside_perimeter: bool | None = None


class CustomTag(ApiModel):
    id: Any | None = None
    key: str | None = None
    value: str | None = None


class Match(ApiModel):
    name: str | None = None
    indice_start: int | None = None
    indice_end: int | None = None
    pre_line_start: int | None = None
    pre_line_end: int | None = None
    post_line_start: int | None = None
    post_line_end: int | None = None


class LastScan(ApiModel):
    date: UtcDatetime | None = None
    status: str | None = None


class Source(ApiModel):
    id: int
    type: str | None = None
    full_name: str | None = None
    url: str | None = None
    health: str | None = None
    source_criticality: str | None = None
    visibility: str | None = None
    monitored: bool | None = None
    open_incidents_count: int | None = None
    closed_incidents_count: int | None = None
    last_scan: LastScan | None = None
    default_branch: str | None = None
    external_id: str | None = None


class Occurrence(ApiModel):
    id: int
    incident_id: int
    date: UtcDatetime
    filepath: str | None = None
    kind: str | None = None
    presence: str | None = None
    matches: list[Match] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    url: str | None = None
    author_info: str | None = None  # the commit author's e-mail
    author_name: str | None = None
    sha: str | None = None
    change_type: str | None = None
    source: Source | None = None


class Incident(ApiModel):
    id: int
    detector: Detector
    date: UtcDatetime  # the first occurrence's date
    secret_id: int | None = None
    secret_hash: str | None = None
    hmsl_hash: str | None = None
    occurrences_count: int | None = None
    status: str
    triggered_at: UtcDatetime | None = None
    ignored_at: UtcDatetime | None = None
    ignorer_id: int | None = None
    ignorer_api_token_id: str | None = None
    resolved_at: UtcDatetime | None = None
    resolver_id: int | None = None
    resolver_api_token_id: str | None = None
    secret_revoked: bool | None = None
    validity: str | None = None
    severity: str | None = None
    assignee_id: int | None = None
    assignee_email: str | None = None
    # A live share link lets anyone read the secret: never shown in repr, dumps or logs.
    share_url: SecretStr | None = Field(default=None, repr=False)
    feedback_list: list[dict[str, Any]] = Field(default_factory=list)
    risk_score: int | None = None
    severity_rule_id: int | None = None
    is_vaulted: bool | None = None
    ignore_reason: str | None = None
    occurrences: list[Occurrence] | None = None  # null in lists and action answers
    secret_presence: dict[str, Any] | None = None
    regression: bool | None = None
    gitguardian_url: str | None = None
    tags: list[str] = Field(default_factory=list)
    incident_name: str | None = None
    public_exposure: PublicExposure | None = None
    destination_tickets: list[dict[str, Any]] = Field(default_factory=list)
    custom_tags: list[CustomTag] = Field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_shared(self) -> bool:
        return bool(self.share_url and self.share_url.get_secret_value())


class Member(ApiModel):
    id: int
    role: str | None = None  # deprecated copy of access_level
    access_level: str | None = None
    email: str
    name: str | None = None
    created_at: UtcDatetime | None = None
    last_login: UtcDatetime | None = None
    active: bool | None = None


class Note(ApiModel):
    id: int
    incident_id: int | None = None
    member_id: int | None = None
    api_token_id: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None
    comment: str


class Share(ApiModel):
    # share_url and token both open the incident to whoever holds them: secrets.
    share_url: SecretStr = Field(repr=False)
    incident_id: int | None = None
    feedback_collection: bool | None = None
    auto_healing: bool | None = None
    token: SecretStr | None = Field(default=None, repr=False)
    expire_at: UtcDatetime | None = None
    revoked_at: UtcDatetime | None = None


class AuditLog(ApiModel):
    id: int
    date: UtcDatetime
    member_id: int | None = None
    member_email: str | None = None
    member_name: str | None = None
    api_token_id: str | None = None
    ip_address: str | None = None
    target_ids: list[str] = Field(default_factory=list)
    action_type: str | None = None
    event_name: str | None = None
    data: Any | None = None


# The one scope rule, for the preflight and the sandbox: a scope includes others. GitGuardian:
# incidents:share includes write includes read; the other resources' write includes their read.
# Only what GitGuardian documents ("share includes write includes read", for incidents): a
# key with members:write alone is refused members:read here and by the sandbox, so a preflight
# never accepts a key the real API might answer 403.
IMPLIED_SCOPES: dict[str, tuple[str, ...]] = {
    "incidents:share": ("incidents:write", "incidents:read"),
    "incidents:write": ("incidents:read",),
}


def granted_scopes(scopes: Iterable[str]) -> set[str]:
    """The scopes a token holds, with the ones they include."""
    granted = set(scopes)
    for held in list(granted):
        granted.update(IMPLIED_SCOPES.get(held, ()))
    return granted


def missing_scopes(scopes: Iterable[str], needed: Iterable[str]) -> list[str]:
    """The needed scopes that a token holding `scopes` lacks, sorted."""
    return sorted(set(needed) - granted_scopes(scopes))


class Token(ApiModel):
    id: str
    name: str | None = None
    workspace_id: int | None = None
    type: str | None = None
    status: str | None = None
    created_at: UtcDatetime | None = None
    last_used_at: UtcDatetime | None = None
    expire_at: UtcDatetime | None = None
    revoked_at: UtcDatetime | None = None
    member_id: int | None = None
    creator_id: int | None = None
    scopes: list[str] = Field(default_factory=list)


class MemberBrief(ApiModel):
    """The member embedded in an activity-log entry."""

    id: int
    name: str | None = None
    email: str | None = None
    access_level: str | None = None


class ActivityContent(ApiModel):
    type: str | None = None  # "action" (system and user actions), or a note
    content_key: str | None = None  # TRIGGER, ASSIGN, RESOLVE, UNRESOLVE, SHARE, ...
    data: Any | None = None


class ActivityLog(ApiModel):
    """One entry of an incident's history (`/v1/incidents/secrets/{id}/activity-logs`)."""

    id: int
    member: MemberBrief | None = None  # None: the platform, or a token (api_token_id)
    api_token_id: str | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime | None = None
    content: ActivityContent = Field(default_factory=ActivityContent)
    incident_id: int | None = None

    @property
    def key(self) -> str:
        return self.content.content_key or ""


class IncidentMember(ApiModel):
    """A member with access to an incident, and that access."""

    id: int
    member_id: int | None = None
    role: str | None = None
    name: str | None = None
    email: str | None = None
    incident_id: int | None = None
    incident_permission: str | None = None


class Team(ApiModel):
    id: int
    name: str | None = None
    description: str | None = None
    is_global: bool | None = None
    gitguardian_url: str | None = None


class IncidentAccess(ApiModel):
    """The answer of an access grant."""

    member_id: int | None = None
    incident_id: int | None = None
    incident_permission: str | None = None
