"""Typed answers of GitGuardian's public API v1 (pydantic v2). Plain Python, no Prefect.

Attribute names are the API's field names. Unknown fields are kept (`extra="allow"`) because
the API grows; enum-like fields are plain `str` so a value GitGuardian adds tomorrow is kept as
its raw string instead of failing a whole page. Known values are the StrEnum constants below.
Times are aware UTC datetimes. Share URLs are secrets: they are `SecretStr`, hidden from repr,
logs and dumps.
"""
from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr


def _as_utc(value: datetime) -> datetime:
    # The API always sends "Z"; a naive time can only come from a fake, and means UTC there too.
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class IncidentStatus(StrEnum):
    TRIGGERED = "TRIGGERED"
    ASSIGNED = "ASSIGNED"
    RESOLVED = "RESOLVED"
    IGNORED = "IGNORED"


OPEN_STATUSES = frozenset({IncidentStatus.TRIGGERED, IncidentStatus.ASSIGNED})
CLOSED_STATUSES = frozenset({IncidentStatus.RESOLVED, IncidentStatus.IGNORED})


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


class OccurrenceKind(StrEnum):
    REALTIME = "realtime"
    HISTORICAL = "historical"


class Presence(StrEnum):
    PRESENT = "present"
    REMOVED = "removed"


class ChangeType(StrEnum):
    ADDITION = "addition"
    DELETION = "deletion"
    CONTEXT = "context"


class AccessLevel(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    MEMBER = "member"
    RESTRICTED = "restricted"


class ActionType(StrEnum):
    READ = "READ"
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    OTHER = "OTHER"


class ApiModel(BaseModel):
    """Base of every answer: unknown fields kept, values not coerced beyond pydantic's lax mode."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Detector(ApiModel):
    name: str
    display_name: Optional[str] = None
    nature: Optional[str] = None
    family: Optional[str] = None
    category: Optional[str] = None
    detector_group_name: Optional[str] = None
    detector_group_display_name: Optional[str] = None


class PublicExposure(ApiModel):
    source_publicly_visible: Optional[bool] = None
    public_incident_linked: Optional[bool] = None
    leaked_outside_perimeter: Optional[bool] = None


class CustomTag(ApiModel):
    id: Optional[Any] = None
    key: Optional[str] = None
    value: Optional[str] = None


class Match(ApiModel):
    name: Optional[str] = None
    indice_start: Optional[int] = None
    indice_end: Optional[int] = None
    pre_line_start: Optional[int] = None
    pre_line_end: Optional[int] = None
    post_line_start: Optional[int] = None
    post_line_end: Optional[int] = None


class LastScan(ApiModel):
    date: Optional[UtcDatetime] = None
    status: Optional[str] = None


class Source(ApiModel):
    id: int
    type: Optional[str] = None
    full_name: Optional[str] = None
    url: Optional[str] = None
    health: Optional[str] = None
    source_criticality: Optional[str] = None
    visibility: Optional[str] = None
    monitored: Optional[bool] = None
    open_incidents_count: Optional[int] = None
    closed_incidents_count: Optional[int] = None
    last_scan: Optional[LastScan] = None
    default_branch: Optional[str] = None
    external_id: Optional[str] = None


class Occurrence(ApiModel):
    id: int
    incident_id: int
    date: UtcDatetime
    filepath: Optional[str] = None
    kind: Optional[str] = None
    presence: Optional[str] = None
    matches: list[Match] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    url: Optional[str] = None
    author_info: Optional[str] = None  # the commit author's e-mail
    author_name: Optional[str] = None
    sha: Optional[str] = None
    change_type: Optional[str] = None
    source: Optional[Source] = None


class Incident(ApiModel):
    id: int
    detector: Detector
    date: UtcDatetime  # the first occurrence's date
    secret_id: Optional[int] = None
    secret_hash: Optional[str] = None
    hmsl_hash: Optional[str] = None
    occurrences_count: Optional[int] = None
    status: str
    triggered_at: Optional[UtcDatetime] = None
    ignored_at: Optional[UtcDatetime] = None
    ignorer_id: Optional[int] = None
    ignorer_api_token_id: Optional[str] = None
    resolved_at: Optional[UtcDatetime] = None
    resolver_id: Optional[int] = None
    resolver_api_token_id: Optional[str] = None
    secret_revoked: Optional[bool] = None
    validity: Optional[str] = None
    severity: Optional[str] = None
    assignee_id: Optional[int] = None
    assignee_email: Optional[str] = None
    # A live share link lets anyone read the secret: never shown in repr, dumps or logs.
    share_url: Optional[SecretStr] = Field(default=None, repr=False)
    feedback_list: list[dict[str, Any]] = Field(default_factory=list)
    risk_score: Optional[int] = None
    severity_rule_id: Optional[int] = None
    is_vaulted: Optional[bool] = None
    ignore_reason: Optional[str] = None
    occurrences: Optional[list[Occurrence]] = None  # null in lists and action answers
    secret_presence: Optional[dict[str, Any]] = None
    regression: Optional[bool] = None
    gitguardian_url: Optional[str] = None
    tags: list[str] = Field(default_factory=list)
    incident_name: Optional[str] = None
    public_exposure: Optional[PublicExposure] = None
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
    role: Optional[str] = None  # deprecated copy of access_level
    access_level: Optional[str] = None
    email: str
    name: Optional[str] = None
    created_at: Optional[UtcDatetime] = None
    last_login: Optional[UtcDatetime] = None
    active: Optional[bool] = None


class Note(ApiModel):
    id: int
    incident_id: Optional[int] = None
    member_id: Optional[int] = None
    api_token_id: Optional[str] = None
    created_at: Optional[UtcDatetime] = None
    updated_at: Optional[UtcDatetime] = None
    comment: str


class Share(ApiModel):
    # share_url and token both open the incident to whoever holds them: secrets.
    share_url: SecretStr = Field(repr=False)
    incident_id: Optional[int] = None
    feedback_collection: Optional[bool] = None
    auto_healing: Optional[bool] = None
    token: Optional[SecretStr] = Field(default=None, repr=False)
    expire_at: Optional[UtcDatetime] = None
    revoked_at: Optional[UtcDatetime] = None


class AuditLog(ApiModel):
    id: int
    date: UtcDatetime
    member_id: Optional[int] = None
    member_email: Optional[str] = None
    member_name: Optional[str] = None
    api_token_id: Optional[str] = None
    ip_address: Optional[str] = None
    target_ids: list[str] = Field(default_factory=list)
    action_type: Optional[str] = None
    event_name: Optional[str] = None
    data: Optional[Any] = None


class Token(ApiModel):
    id: str
    name: Optional[str] = None
    workspace_id: Optional[int] = None
    type: Optional[str] = None
    status: Optional[str] = None
    created_at: Optional[UtcDatetime] = None
    last_used_at: Optional[UtcDatetime] = None
    expire_at: Optional[UtcDatetime] = None
    revoked_at: Optional[UtcDatetime] = None
    member_id: Optional[int] = None
    creator_id: Optional[int] = None
    scopes: list[str] = Field(default_factory=list)

    def missing_scopes(self, needed: list[str] | tuple[str, ...] | set[str]) -> list[str]:
        """The needed scopes this token lacks, honouring share > write > read implication."""
        implied = set(self.scopes)
        if "incidents:share" in implied:
            implied |= {"incidents:write", "incidents:read"}
        if "incidents:write" in implied:
            implied.add("incidents:read")
        return sorted(s for s in set(needed) if s not in implied)


class MemberBrief(ApiModel):
    """The member embedded in an activity-log entry."""

    id: int
    name: Optional[str] = None
    email: Optional[str] = None
    access_level: Optional[str] = None


class ActivityContent(ApiModel):
    type: Optional[str] = None  # "action" (system and user actions), or a note
    content_key: Optional[str] = None  # TRIGGER, ASSIGN, RESOLVE, UNRESOLVE, SHARE, ...
    data: Optional[Any] = None


class ActivityLog(ApiModel):
    """One entry of an incident's history (`/v1/incidents/secrets/{id}/activity-logs`)."""

    id: int
    member: Optional[MemberBrief] = None  # None: the platform, or a token (api_token_id)
    api_token_id: Optional[str] = None
    created_at: UtcDatetime
    updated_at: Optional[UtcDatetime] = None
    content: ActivityContent = Field(default_factory=ActivityContent)
    incident_id: Optional[int] = None

    @property
    def key(self) -> str:
        return self.content.content_key or ""


class IncidentMember(ApiModel):
    """A member with access to an incident, and that access."""

    id: int
    member_id: Optional[int] = None
    role: Optional[str] = None
    name: Optional[str] = None
    email: Optional[str] = None
    incident_id: Optional[int] = None
    incident_permission: Optional[str] = None


class Team(ApiModel):
    id: int
    name: Optional[str] = None
    description: Optional[str] = None
    is_global: Optional[bool] = None
    gitguardian_url: Optional[str] = None


class IncidentAccess(ApiModel):
    """The answer of an access grant."""

    member_id: Optional[int] = None
    incident_id: Optional[int] = None
    incident_permission: Optional[str] = None
