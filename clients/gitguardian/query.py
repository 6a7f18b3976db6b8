"""Query and path guards: every listing filter validated before anything is sent (the server
ignores a filter it does not know and would answer everything), ids checked before they go into
a path, the base URL and the key checked before the first request."""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from clients.models import AccessLevel, IncidentStatus, Presence, Severity, Tag, Validity

MAX_PER_PAGE = 100

def _text_value(name: str, value: Any, *, min_length: int = 1) -> str:
    if not isinstance(value, str) or len(value.strip()) < min_length:
        raise ValueError(f"filter {name!r} needs a string of at least {min_length} character(s)")
    return value


def _int_value(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"filter {name!r} needs an integer, got {type(value).__name__}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"filter {name!r} needs an integer") from None
    if (low is not None and number < low) or (high is not None and number > high):
        raise ValueError(f"filter {name!r} must be between {low} and {high}")
    return str(number)


def _bool_value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    raise ValueError(f"filter {name!r} needs a bool")


def iso_utc(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and Z, as the API writes its own times."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _date_value(name: str, value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            # A naive time would be read in the server's zone: refuse rather than guess.
            raise ValueError(f"filter {name!r} needs an aware datetime (with a time zone)")
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"filter {name!r} needs an ISO-8601 date or time") from None
        if len(value) <= 10:  # a bare date
            return parsed.date().isoformat()
        return _date_value(name, parsed)
    raise ValueError(f"filter {name!r} needs a datetime, date or ISO-8601 string")


def _choices(*allowed: str, multi: bool = True) -> Callable[[str, Any], str]:
    allowed_set = frozenset(allowed)

    def validate(name: str, value: Any) -> str:
        values = _as_list(value) if multi else [value]
        if not values:
            raise ValueError(f"filter {name!r} needs at least one value")
        for item in values:
            if not isinstance(item, str) or item not in allowed_set:
                raise ValueError(
                    f"filter {name!r}: {item!r} is not one of {', '.join(sorted(allowed_set))}"
                )
        return ",".join(str(v) for v in values)

    return validate


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part for part in value.split(",") if part]
    if isinstance(value, (list, tuple, set, frozenset)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    return [value]


def _text(name: str, value: Any) -> str:
    return _text_value(name, value)


def _text3(name: str, value: Any) -> str:
    # The API requires 3+ characters for these searches and ignores shorter ones.
    return _text_value(name, value, min_length=3)


def _integer(name: str, value: Any) -> str:
    return _int_value(name, value, low=0)


def _risk(name: str, value: Any) -> str:
    return _int_value(name, value, low=0, high=100)


Validator = Callable[[str, Any], str]

_STATUSES = _choices(*IncidentStatus)
_SEVERITIES = _choices(*Severity)
_VALIDITIES = _choices(*Validity)
_TAGS = _choices(*Tag, "NONE")

_INCIDENT_FILTERS: dict[str, Validator] = {
    "status": _STATUSES,
    "severity": _SEVERITIES,
    "validity": _VALIDITIES,
    "assignee_email": _text,
    "assignee_id": _integer,
    "date_before": _date_value,
    "date_after": _date_value,
    "triggered_at_before": _date_value,
    "triggered_at_after": _date_value,
    "tags": _TAGS,
    "exclude_tags": _TAGS,
    "detector_group_name": _text,
    "ignorer_id": _integer,
    "ignorer_api_token_id": _text,
    "resolver_id": _integer,
    "resolver_api_token_id": _text,
    "feedback": _bool_value,
    "risk_score_min": _risk,
    "risk_score_max": _risk,
    "custom_tags": _text,  # custom tag ids, comma-separated
    "custom_tag_key": _text,
    "custom_tag_value": _text,
    "only_on_provider_archived_sources": _bool_value,
    "ordering": _choices(
        *(p + f for f in ("date", "resolved_at", "ignored_at", "risk_score") for p in ("", "-")),
        multi=False,
    ),
}

_OCCURRENCE_FILTERS: dict[str, Validator] = {
    "incident_id": _integer,
    "source_id": _integer,
    "source_name": _text,
    "source_type": _text,
    "presence": _choices(*Presence, multi=False),
    "author_name": _text,
    "author_info": _text3,
    "sha": _text3,
    "filepath": _text3,
    "severity": _SEVERITIES,
    "status": _STATUSES,
    "validity": _VALIDITIES,
    "tags": _TAGS,
    "exclude_tags": _TAGS,
    "date_before": _date_value,
    "date_after": _date_value,
    "incident_assignee_id": _integer,
    "ordering": _choices("date", "-date", multi=False),
}

_MEMBER_FILTERS: dict[str, Validator] = {
    "access_level": _choices(*AccessLevel, multi=False),
    "active": _bool_value,
    "search": _text,
    "ordering": _choices("created_at", "-created_at", "last_login", "-last_login", multi=False),
}

_AUDIT_LOG_FILTERS: dict[str, Validator] = {
    "date_before": _date_value,
    "date_after": _date_value,
    "event_name": _text,
    "member_id": _integer,
    "member_email": _text,
    "member_name": _text,
    "api_token_id": _text,
    "ip_address": _text,
}

_NOTE_FILTERS: dict[str, Validator] = {
    "ordering": _choices("created_at", "-created_at", "updated_at", "-updated_at", multi=False),
    "member_id": _integer,
    "search": _text,
}

_ACTIVITY_FILTERS: dict[str, Validator] = {
    "ordering": _choices("created_at", "-created_at", multi=False),
}

_INCIDENT_MEMBER_FILTERS: dict[str, Validator] = {
    "access_level": _choices(*AccessLevel, multi=False),
    "incident_permission": _choices("can_view", "can_edit", "full_access", multi=False),
    "search": _text,
}

_TOKEN_FILTERS: dict[str, Validator] = {
    "status": _choices("active", "expired", "revoked", multi=False),
    "type": _choices("personal_access_token", "service_account", multi=False),
    "member_id": _integer,
}

_TEAM_FILTERS: dict[str, Validator] = {
    "is_global": _bool_value,
    "search": _text,
}

INCIDENT_PERMISSIONS = ("can_view", "can_edit", "full_access")

_SOURCE_FILTERS: dict[str, Validator] = {
    "search": _text,
    "type": _text,
    "health": _choices("safe", "unknown", "at_risk", multi=False),
    "visibility": _choices("public", "private", "internal", multi=False),
    "source_criticality": _choices("critical", "high", "medium", "low", "unknown", multi=False),
    "monitored": _bool_value,
    "external_id": _text,
    "last_scan_status": _text,
    "ordering": _choices("last_scan_date", "-last_scan_date", multi=False),
}


def build_query(
    endpoint: str, allowed: Mapping[str, Validator], filters: Mapping[str, Any], per_page: int
) -> dict[str, str]:
    """Validated query parameters, or ValueError before anything is sent.

    The server silently ignores unknown parameters and would return everything, so a misspelt
    filter must fail here. None values are dropped (a convenient "no filter").
    """
    unknown = sorted(set(filters) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown filter(s) for {endpoint}: {', '.join(unknown)}; "
            f"known: {', '.join(sorted(allowed))}"
        )
    query = {"per_page": _per_page(per_page)}
    for name, value in filters.items():
        if value is None:
            continue
        query[name] = allowed[name](name, value)
    return query


def _per_page(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PER_PAGE:
        raise ValueError(f"per_page must be an integer from 1 to {MAX_PER_PAGE}")
    return str(value)


def _object_id(name: str, value: Any) -> int:
    # Ids go into the URL path: only positive integers, so no path can be smuggled in.
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """The base URL without trailing slash; ValueError unless https (or http on loopback)."""
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("GitGuardian base URL is empty")
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"GitGuardian base URL must be an http(s) URL, got {base_url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("GitGuardian base URL must not hold credentials, a query or a fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"refusing plain http to {parts.hostname}: the API key would travel in clear; "
            "use https (http is allowed only for loopback hosts such as 127.0.0.1)"
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def check_api_key(api_key: Any) -> str:
    """The key as given; ValueError with a clear reason (never the key itself) otherwise."""
    if not isinstance(api_key, str) or not api_key:
        raise ValueError("GitGuardian API key is empty: set GITGUARDIAN_API_KEY")
    for position, char in enumerate(api_key):
        if not ("\x21" <= char <= "\x7e"):
            raise ValueError(
                "GitGuardian API key must be printable ASCII without spaces; "
                f"character {position + 1} of {len(api_key)} is not"
            )
    return api_key
