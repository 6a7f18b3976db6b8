"""GitGuardian public API v1 client. Plain Python (requests + pydantic), no Prefect.

Every request goes through `GitGuardianClient._send`: auth header, User-Agent, timeout, the
client-side rate limiter, the one retry policy, debug logging (method, path, status, duration;
never the key) and the per-endpoint request counter.

Retry rules (see `RetryPolicy` for the timing):
- 429 is retried for every method: the server did not process the request.
- 5xx, connection errors and timeouts are retried for GET and for the writes whose repeat
  leaves the same end state: assign (same target), unassign, resolve, ignore, reopen, unshare,
  update_note, delete_note. A repeated one may answer 404/409 where the first had worked: the
  task layer re-reads the incident before it calls a write, so it tells "already done".
- NOT retried after 5xx or a connection error: add_note (a repeat would post a second note)
  and share (a repeat would mint a new share URL). The caller decides, knowing the write may
  have happened.
- Other 4xx are never retried.
"""
from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from pydantic import BaseModel, ValidationError

from clients.models import (
    NOTE_MAX_CHARS,
    AccessLevel,
    ActivityLog,
    AuditLog,
    IgnoreReason,
    Incident,
    IncidentAccess,
    IncidentMember,
    IncidentStatus,
    Member,
    Note,
    Occurrence,
    Presence,
    Severity,
    Share,
    Source,
    Tag,
    Team,
    Token,
    Validity,
)
from clients.ratelimit import RateLimiter
from clients.redact import scrub
from clients.retry import RetryPolicy, parse_retry_after

__all__ = [
    "GitGuardianClient",
    "GitGuardianError",
    "AuthenticationError",
    "PermissionDenied",
    "MissingScope",
    "NotFound",
    "Conflict",
    "RateLimited",
    "ServerError",
    "BadRequest",
    "InvalidResponse",
    "ConnectionFailed",
    "DEFAULT_BASE_URL",
    "USER_AGENT",
]

logger = logging.getLogger("clients.gitguardian")

VERSION = "0.1.0"
USER_AGENT = f"gg-remediation/{VERSION} (+prefect playbooks)"
DEFAULT_BASE_URL = "https://api.gitguardian.com"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_REQUESTS_PER_MINUTE = 200  # Business plan, personal access token
MAX_PER_PAGE = 100
ERROR_TEXT_LIMIT = 200

M = TypeVar("M", bound=BaseModel)


# --------------------------------------------------------------------------- exceptions


class GitGuardianError(Exception):
    """Base of every client error. Holds status, the server's `detail`, method and path.

    The path is the API path without host or query; the key is never part of the text. The
    detail and the message pass through `clients.redact.scrub` here, whoever builds the error:
    a share link or a `token=` value quoted by the server never rides on an error text.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.detail = scrub(str(detail))
        self.status = status
        self.method = method
        self.path = scrub(path) if path is not None else None
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.method} {self.path}" if self.method and self.path else "GitGuardian API"
        status = f" -> {self.status}" if self.status is not None else ""
        return scrub(f"{where}{status}: {self.detail}")

    def __str__(self) -> str:
        return self._text()


class AuthenticationError(GitGuardianError):
    """401: the key is missing, invalid, expired or revoked."""


class PermissionDenied(GitGuardianError):
    """403: the key lacks a scope, or the member's role forbids the action."""


MissingScope = PermissionDenied


class NotFound(GitGuardianError):
    """404."""


class Conflict(GitGuardianError):
    """409: the state forbids the write (e.g. the incident is already shared)."""


class RateLimited(GitGuardianError):
    """429 still answered after every allowed attempt."""

    def __init__(self, detail: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(detail, **kwargs)


class ServerError(GitGuardianError):
    """5xx (503 with X-Maintenance during maintenance)."""


class BadRequest(GitGuardianError):
    """Any other 4xx (400, 405, 422, ...): the request itself is wrong; never retried."""


class InvalidResponse(GitGuardianError):
    """A 2xx answer that is not JSON or not of the documented shape."""


class ConnectionFailed(GitGuardianError):
    """No HTTP answer: connection refused, reset, DNS, TLS, or timeout."""


_STATUS_ERRORS: dict[int, type[GitGuardianError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: RateLimited,
}


# --------------------------------------------------------------------------- filters

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


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


# --------------------------------------------------------------------------- guards

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


# --------------------------------------------------------------------------- client

class _Key:
    """Holds the API key so that repr(), vars() and tracebacks show '***', not the key."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)


def path_template(path: str) -> str:
    """"/v1/incidents/secrets/12/notes/5" -> "/v1/incidents/secrets/{id}/notes/{id}"."""
    return "/".join("{id}" if _ID_SEGMENT.match(s) else s for s in path.split("/"))


def _readable(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()[:ERROR_TEXT_LIMIT]


class GitGuardianClient:
    """Synchronous client of GitGuardian's public API v1.

    `max_retries` is the number of retries after the first try; `retry` (a RetryPolicy) and
    `rate_limiter` may be passed instead to inject a sleeper, randomness and clock.
    `requests_per_minute=None` (or 0) disables client-side limiting (self-hosted, sandbox).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        requests_per_minute: int | None = DEFAULT_REQUESTS_PER_MINUTE,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self._api_key = _Key(check_api_key(api_key))
        if timeout is None or timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_attempts=max_retries + 1)
        if rate_limiter is None and requests_per_minute:
            rate_limiter = RateLimiter(requests_per_minute)
        self.rate_limiter = rate_limiter
        self.session = session or requests.Session()
        self._base_path = urlsplit(self.base_url).path
        self._counts_lock = threading.Lock()
        self.request_counts: Counter[str] = Counter()

    @classmethod
    def from_env(cls, **kwargs: Any) -> GitGuardianClient:
        """From GITGUARDIAN_API_URL (default the US SaaS) and GITGUARDIAN_API_KEY."""
        base_url = os.environ.get("GITGUARDIAN_API_URL") or DEFAULT_BASE_URL
        api_key = os.environ.get("GITGUARDIAN_API_KEY", "")
        if not api_key:
            raise ValueError("GITGUARDIAN_API_KEY is not set")
        return cls(base_url, api_key, **kwargs)

    def __repr__(self) -> str:
        return f"GitGuardianClient(base_url={self.base_url!r}, api_key='***')"

    @property
    def requests_total(self) -> int:
        with self._counts_lock:
            return sum(self.request_counts.values())

    # ------------------------------------------------------------------ the one request path

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        repeat_safe: bool = True,
        url: str | None = None,
    ) -> requests.Response:
        """Send one API call with limiter, retries, logging and counting; raise typed errors.

        `path` is the API path ("/v1/..."); `url`, when given, is a full next-page URL whose
        query is already complete. `repeat_safe=False` stops retries after a 5xx or a lost
        connection (429 is still retried: the server did not process the request).
        """
        target = url or f"{self.base_url}{path}"
        key = f"{method} {path_template(path)}"
        headers = {
            "Authorization": f"Token {self._api_key.value}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        attempt = 0
        while True:
            attempt += 1
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            with self._counts_lock:
                self.request_counts[key] += 1
            started = time.perf_counter()
            try:
                response = self.session.request(
                    method, target, params=params, json=json, headers=headers,
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                ms = (time.perf_counter() - started) * 1000
                kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                logger.debug("%s %s -> %s after %.0f ms (try %d)", method, path, kind, ms, attempt)
                if repeat_safe and self.retry.can_retry(attempt):
                    self.retry.wait(attempt)
                    continue
                # The exception text of requests may hold the URL but never our header.
                raise ConnectionFailed(
                    f"{kind}: {type(exc).__name__}", method=method, path=path
                ) from None
            ms = (time.perf_counter() - started) * 1000
            status = response.status_code
            logger.debug("%s %s -> %d in %.0f ms (try %d)", method, path, status, ms, attempt)
            if status < 400:
                return response
            retry_after = response.headers.get("Retry-After")
            if status == 429 and self.retry.can_retry(attempt):
                self.retry.wait(attempt, retry_after)
                continue
            if status >= 500 and repeat_safe and self.retry.can_retry(attempt):
                self.retry.wait(attempt, retry_after)
                continue
            raise self._error(response, method, path)

    def _error(self, response: requests.Response, method: str, path: str) -> GitGuardianError:
        status = response.status_code
        detail = self._detail(response)
        if status >= 500:
            if response.headers.get("X-Maintenance", "").lower() == "true":
                detail = f"maintenance: {detail}"
            return ServerError(detail, status=status, method=method, path=path)
        error_type = _STATUS_ERRORS.get(status, BadRequest)
        if error_type is RateLimited:
            return RateLimited(
                detail, status=status, method=method, path=path,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        return error_type(detail, status=status, method=method, path=path)

    def _detail(self, response: requests.Response) -> str:
        """The server's `detail`, or a readable excerpt of a non-JSON body; never the key."""
        text = response.text or ""
        detail: str | None = None
        try:
            body = response.json()
        except (ValueError, RecursionError):  # RecursionError: a hostile nesting bomb
            body = None
        if isinstance(body, dict) and "detail" in body:
            detail = str(body["detail"])
        elif body is not None:
            detail = str(body)
        else:
            detail = text
        return self._readable(detail) or response.reason or f"HTTP {response.status_code}"

    def _readable(self, text: str) -> str:
        # Scrub before cutting: a key or a link straddling the cut would leave its first part.
        return _readable(scrub(text, self._api_key.value))

    def _json(self, response: requests.Response, method: str, path: str) -> Any:
        try:
            return response.json()
        except (ValueError, RecursionError):  # RecursionError: a hostile nesting bomb
            raise InvalidResponse(
                f"answer is not JSON: {self._readable(response.text or '') or '(empty body)'}",
                status=response.status_code, method=method, path=path,
            ) from None

    def _parse(self, model: type[M], data: Any, method: str, path: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # Without the inputs: they may hold a share URL.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)[:5]
            )
            raise InvalidResponse(
                f"answer is not a valid {model.__name__}: {problems}",
                status=None, method=method, path=path,
            ) from None

    def _get_one(self, model: type[M], path: str, params: Mapping[str, str] | None = None) -> M:
        response = self._send("GET", path, params=params)
        return self._parse(model, self._json(response, "GET", path), "GET", path)

    def _write(
        self,
        method: str,
        model: type[M] | None,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        repeat_safe: bool = True,
    ) -> M | None:
        response = self._send(method, path, params=params, json=json, repeat_safe=repeat_safe)
        if model is None:
            return None
        return self._parse(model, self._json(response, method, path), method, path)

    def _pages(
        self, model: type[M], path: str, query: Mapping[str, str]
    ) -> Iterator[list[M]]:
        """Lazily fetch pages, following Link rel="next" until it is absent or empty."""
        next_url: str | None = None
        current_path = path
        followed: set[str] = set()  # a next link seen twice would page forever
        while True:
            if next_url is None:
                response = self._send("GET", path, params=query)
            else:
                response = self._send("GET", current_path, url=next_url)
            data = self._json(response, "GET", current_path)
            if not isinstance(data, list):
                raise InvalidResponse(
                    f"expected a JSON list, got {type(data).__name__}",
                    status=response.status_code, method="GET", path=current_path,
                )
            yield [self._parse(model, item, "GET", current_path) for item in data]
            link = response.links.get("next", {}).get("url")
            if not link:
                return
            next_url, current_path = self._same_origin(link)
            if next_url in followed:
                raise InvalidResponse(
                    "pagination loops: the next link repeats an earlier page",
                    status=response.status_code, method="GET", path=current_path,
                )
            followed.add(next_url)

    def _same_origin(self, link: str) -> tuple[str, str]:
        """The next-page URL on our own base (the key never goes to another host), and its
        API path. The link already carries the full query: nothing is re-added."""
        parts = urlsplit(link)
        base = urlsplit(self.base_url)
        url = urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
        api_path = parts.path
        if self._base_path and api_path.startswith(self._base_path + "/"):
            api_path = api_path[len(self._base_path):]
        return url, api_path

    # ------------------------------------------------------------------ reads

    def health(self) -> str:
        """The server's detail for a valid key ("Valid API key."); 401 raises."""
        response = self._send("GET", "/v1/health")
        data = self._json(response, "GET", "/v1/health")
        return str(data.get("detail", "")) if isinstance(data, dict) else str(data)

    def token_info(self) -> Token:
        return self._get_one(Token, "/v1/api_tokens/self")

    def incident(self, incident_id: int, with_occurrences: int = 0) -> Incident:
        incident_id = _object_id("incident_id", incident_id)
        if isinstance(with_occurrences, bool) or not 0 <= int(with_occurrences) <= 100:
            raise ValueError("with_occurrences must be from 0 to 100")
        return self._get_one(
            Incident,
            f"/v1/incidents/secrets/{incident_id}",
            {"with_occurrences": str(int(with_occurrences))},
        )

    def member(self, member_id: int) -> Member:
        return self._get_one(Member, f"/v1/members/{_object_id('member_id', member_id)}")

    def incident_pages(
        self, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[Incident]]:
        query = build_query("incidents", _INCIDENT_FILTERS, filters, per_page)
        return self._pages(Incident, "/v1/incidents/secrets", query)

    def source_incident_pages(
        self, source_id: int, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[Incident]]:
        source_id = _object_id("source_id", source_id)
        query = build_query("source incidents", _INCIDENT_FILTERS, filters, per_page)
        return self._pages(Incident, f"/v1/sources/{source_id}/incidents/secrets", query)

    def occurrence_pages(
        self, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[Occurrence]]:
        query = build_query("occurrences", _OCCURRENCE_FILTERS, filters, per_page)
        return self._pages(Occurrence, "/v1/occurrences/secrets", query)

    def member_pages(
        self, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[Member]]:
        query = build_query("members", _MEMBER_FILTERS, filters, per_page)
        return self._pages(Member, "/v1/members", query)

    def audit_log_pages(
        self, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[AuditLog]]:
        query = build_query("audit logs", _AUDIT_LOG_FILTERS, filters, per_page)
        return self._pages(AuditLog, "/v1/audit_logs", query)

    def source_pages(
        self, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[Source]]:
        query = build_query("sources", _SOURCE_FILTERS, filters, per_page)
        return self._pages(Source, "/v1/sources", query)

    def note_pages(
        self, incident_id: int, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[Note]]:
        incident_id = _object_id("incident_id", incident_id)
        query = build_query("notes", _NOTE_FILTERS, filters, per_page)
        return self._pages(Note, f"/v1/incidents/secrets/{incident_id}/notes", query)

    def member_incident_pages(
        self, member_id: int, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[Incident]]:
        """The incidents a member has access to (every incident for owners and managers),
        with the incident list's filters."""
        member_id = _object_id("member_id", member_id)
        query = build_query("member incidents", _INCIDENT_FILTERS, filters, per_page)
        return self._pages(Incident, f"/v1/members/{member_id}/secret-incidents", query)

    def activity_log_pages(
        self, incident_id: int, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[ActivityLog]]:
        incident_id = _object_id("incident_id", incident_id)
        query = build_query("activity logs", _ACTIVITY_FILTERS, filters, per_page)
        return self._pages(ActivityLog, f"/v1/incidents/secrets/{incident_id}/activity-logs",
                           query)

    def incident_member_pages(
        self, incident_id: int, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[IncidentMember]]:
        incident_id = _object_id("incident_id", incident_id)
        query = build_query("incident members", _INCIDENT_MEMBER_FILTERS, filters, per_page)
        return self._pages(IncidentMember, f"/v1/incidents/secrets/{incident_id}/members",
                           query)

    def api_token_pages(
        self, *, per_page: int = MAX_PER_PAGE, **filters: Any
    ) -> Iterator[list[Token]]:
        query = build_query("api tokens", _TOKEN_FILTERS, filters, per_page)
        return self._pages(Token, "/v1/api_tokens", query)

    def api_token(self, token_id: str) -> Token:
        if not isinstance(token_id, str) or not re.fullmatch(r"[0-9a-fA-F-]{1,64}", token_id):
            raise ValueError("token_id must be a token's UUID")
        return self._get_one(Token, f"/v1/api_tokens/{token_id}")

    def team_pages(self, *, per_page: int = MAX_PER_PAGE, **filters: Any) -> Iterator[list[Team]]:
        query = build_query("teams", _TEAM_FILTERS, filters, per_page)
        return self._pages(Team, "/v1/teams", query)

    # Item iterators: the same, flattened. Validation happens at call time (not at first
    # next()) because the page iterator's query is built eagerly above.

    def incidents(self, **filters: Any) -> Iterator[Incident]:
        return _flatten(self.incident_pages(**filters))

    def source_incidents(self, source_id: int, **filters: Any) -> Iterator[Incident]:
        return _flatten(self.source_incident_pages(source_id, **filters))

    def occurrences(self, **filters: Any) -> Iterator[Occurrence]:
        return _flatten(self.occurrence_pages(**filters))

    def members(self, **filters: Any) -> Iterator[Member]:
        return _flatten(self.member_pages(**filters))

    def audit_logs(self, **filters: Any) -> Iterator[AuditLog]:
        return _flatten(self.audit_log_pages(**filters))

    def sources(self, **filters: Any) -> Iterator[Source]:
        return _flatten(self.source_pages(**filters))

    def notes(self, incident_id: int, **filters: Any) -> Iterator[Note]:
        return _flatten(self.note_pages(incident_id, **filters))

    def member_incidents(self, member_id: int, **filters: Any) -> Iterator[Incident]:
        return _flatten(self.member_incident_pages(member_id, **filters))

    def activity_logs(self, incident_id: int, **filters: Any) -> Iterator[ActivityLog]:
        return _flatten(self.activity_log_pages(incident_id, **filters))

    def incident_members(self, incident_id: int, **filters: Any) -> Iterator[IncidentMember]:
        return _flatten(self.incident_member_pages(incident_id, **filters))

    def api_tokens(self, **filters: Any) -> Iterator[Token]:
        return _flatten(self.api_token_pages(**filters))

    def teams(self, **filters: Any) -> Iterator[Team]:
        return _flatten(self.team_pages(**filters))

    # ------------------------------------------------------------------ writes

    def _incident_path(self, incident_id: int, action: str) -> str:
        return f"/v1/incidents/secrets/{_object_id('incident_id', incident_id)}/{action}"

    def assign(
        self,
        incident_id: int,
        *,
        email: str | None = None,
        member_id: int | None = None,
        send_email: bool = True,
    ) -> Incident:
        """Assign to exactly one of `email` or `member_id`. Retried on 5xx: same target."""
        if (email is None) == (member_id is None):
            raise ValueError("assign needs exactly one of email or member_id")
        body: dict[str, Any]
        if email is not None:
            body = {"email": _text_value("email", email)}
        else:
            body = {"member_id": _object_id("member_id", member_id)}
        return self._write(
            "POST", Incident, self._incident_path(incident_id, "assign"),
            params={"send_email": _bool_value("send_email", send_email)}, json=body,
        )

    def update_incident(
        self,
        incident_id: int,
        *,
        severity: str | None = None,
        custom_tags: list[Mapping[str, Any]] | None = None,
    ) -> Incident:
        """PATCH severity and/or custom tags ([{"key": k, "value": v}], replacing the
        incident's). Retried on 5xx: a repeat sets the same values."""
        body: dict[str, Any] = {}
        if severity is not None:
            if severity not in set(Severity):
                raise ValueError(f"severity must be one of {', '.join(Severity)}")
            body["severity"] = str(severity)
        if custom_tags is not None:
            tags = []
            for tag in custom_tags:
                key, value = tag.get("key"), tag.get("value")
                if not isinstance(key, str) or not key or not isinstance(value, (str, type(None))):
                    raise ValueError("custom_tags are {'key': str, 'value': str | None} items")
                tags.append({"key": key, "value": value})
            body["custom_tags"] = tags
        if not body:
            raise ValueError("update_incident needs severity or custom_tags")
        path = f"/v1/incidents/secrets/{_object_id('incident_id', incident_id)}"
        return self._write("PATCH", Incident, path, json=body)

    def grant_access(
        self, incident_id: int, member_id: int, *, permission: str = "can_edit",
        send_email: bool = False,
    ) -> IncidentAccess:
        """Give one member access to one incident (`PUT /v1/members/{member_id}/
        secret_incidents/{incident_id}`, which replaces the deprecated grant_access)."""
        if permission not in INCIDENT_PERMISSIONS:
            raise ValueError(f"permission must be one of {', '.join(INCIDENT_PERMISSIONS)}")
        path = (f"/v1/members/{_object_id('member_id', member_id)}/secret_incidents/"
                f"{_object_id('incident_id', incident_id)}")
        return self._write("PUT", IncidentAccess, path, json={"permission": permission},
                           params={"send_email": _bool_value("send_email", send_email)})

    def revoke_access(self, incident_id: int, member_id: int) -> None:
        path = (f"/v1/members/{_object_id('member_id', member_id)}/secret_incidents/"
                f"{_object_id('incident_id', incident_id)}")
        self._write("DELETE", None, path)

    def unassign(self, incident_id: int) -> Incident:
        return self._write("POST", Incident, self._incident_path(incident_id, "unassign"))

    def resolve(self, incident_id: int, *, secret_revoked: bool) -> Incident:
        if not isinstance(secret_revoked, bool):
            raise ValueError("secret_revoked must be a bool")
        return self._write(
            "POST", Incident, self._incident_path(incident_id, "resolve"),
            json={"secret_revoked": secret_revoked},
        )

    def ignore(self, incident_id: int, *, reason: str) -> Incident:
        if reason not in set(IgnoreReason):
            raise ValueError(f"ignore reason must be one of {', '.join(IgnoreReason)}")
        return self._write(
            "POST", Incident, self._incident_path(incident_id, "ignore"),
            json={"ignore_reason": str(reason)},
        )

    def reopen(self, incident_id: int) -> Incident:
        return self._write("POST", Incident, self._incident_path(incident_id, "reopen"))

    def share(
        self,
        incident_id: int,
        *,
        auto_healing: bool = False,
        feedback_collection: bool = True,
        lifespan_hours: int = 0,
    ) -> Share:
        """Create a share link (a secret). Not retried after 5xx: a repeat mints a new URL."""
        if type(lifespan_hours) is not int or lifespan_hours < 0:
            raise ValueError("lifespan_hours must be 0 (workspace default) or more")
        body = {
            "auto_healing": bool(auto_healing),
            "feedback_collection": bool(feedback_collection),
            "lifespan": lifespan_hours,
        }
        return self._write(
            "POST", Share, self._incident_path(incident_id, "share"), json=body, repeat_safe=False
        )

    def unshare(self, incident_id: int) -> None:
        self._write("POST", None, self._incident_path(incident_id, "unshare"))

    def add_note(self, incident_id: int, comment: str) -> Note:
        """Post a note. Not retried after 5xx: a repeat would post it twice."""
        return self._write(
            "POST", Note, self._incident_path(incident_id, "notes"),
            json={"comment": _comment(comment)}, repeat_safe=False,
        )

    def update_note(self, incident_id: int, note_id: int, comment: str) -> Note:
        path = f"{self._incident_path(incident_id, 'notes')}/{_object_id('note_id', note_id)}"
        return self._write("PATCH", Note, path, json={"comment": _comment(comment)})

    def delete_note(self, incident_id: int, note_id: int) -> None:
        path = f"{self._incident_path(incident_id, 'notes')}/{_object_id('note_id', note_id)}"
        self._write("DELETE", None, path)


def _comment(comment: Any) -> str:
    if not isinstance(comment, str) or not 1 <= len(comment) <= NOTE_MAX_CHARS:
        raise ValueError(f"a note comment must be 1 to {NOTE_MAX_CHARS:,} characters")
    return comment


def _flatten(pages: Iterator[list[M]]) -> Iterator[M]:
    for page in pages:
        yield from page
