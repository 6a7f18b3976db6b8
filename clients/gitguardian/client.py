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

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from pydantic import BaseModel, ValidationError

from clients.gitguardian.errors import (
    _STATUS_ERRORS,
    BadRequest,
    ConnectionFailed,
    GitGuardianError,
    InvalidResponse,
    RateLimited,
    ServerError,
)
from clients.gitguardian.listings import Listings
from clients.gitguardian.query import (
    INCIDENT_PERMISSIONS,
    _bool_value,
    _object_id,
    _text_value,
    check_api_key,
    check_base_url,
)
from clients.models import (
    NOTE_MAX_CHARS,
    IgnoreReason,
    Incident,
    IncidentAccess,
    Member,
    Note,
    Severity,
    Share,
    Token,
)
from clients.ratelimit import RateLimiter
from clients.redact import scrub
from clients.retry import RetryPolicy, parse_retry_after

logger = logging.getLogger("clients.gitguardian")

VERSION = "0.1.0"
USER_AGENT = f"gg-remediation/{VERSION} (+prefect playbooks)"
DEFAULT_BASE_URL = "https://api.gitguardian.com"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_REQUESTS_PER_MINUTE = 200  # Business plan, personal access token
ERROR_TEXT_LIMIT = 200
# A wait longer than this (rate limit, Retry-After, backoff) is said at WARNING: a run that
# seems stuck is usually waiting on the API's limit.
SLOW_WAIT_SECONDS = 5.0

M = TypeVar("M", bound=BaseModel)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


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


class GitGuardianClient(Listings):
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
                waiting = time.monotonic()
                self.rate_limiter.acquire()
                waited = time.monotonic() - waiting
                if waited > SLOW_WAIT_SECONDS:
                    logger.warning("%s: waited %.1f s for the client-side rate limit", key, waited)
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
                    self._pause(key, attempt, None, kind)
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
                self._pause(key, attempt, retry_after, "429 rate limited")
                continue
            if status >= 500 and repeat_safe and self.retry.can_retry(attempt):
                self._pause(key, attempt, retry_after, str(status))
                continue
            raise self._error(response, method, path)

    def _pause(self, key: str, attempt: int, retry_after: str | None, cause: str) -> None:
        """Sleep before the next try; a long wait is said at WARNING with the endpoint's
        template ("GET /v1/incidents/secrets/{id}": no id, no query, never the key)."""
        seconds = self.retry.delay(attempt, retry_after)
        if seconds > SLOW_WAIT_SECONDS:
            told = "Retry-After" if parse_retry_after(retry_after) is not None else "backoff"
            logger.warning("%s: %s, sleeping %.1f s (%s) before try %d", key, cause, seconds,
                           told, attempt + 1)
        if seconds > 0:
            self.retry.sleep(seconds)

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

    def api_token(self, token_id: str) -> Token:
        if not isinstance(token_id, str) or not re.fullmatch(r"[0-9a-fA-F-]{1,64}", token_id):
            raise ValueError("token_id must be a token's UUID")
        return self._get_one(Token, f"/v1/api_tokens/{token_id}")

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
