"""The client's typed errors: one class per kind of failure, all under GitGuardianError."""
from __future__ import annotations

from typing import Any

from clients.redact import scrub


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
