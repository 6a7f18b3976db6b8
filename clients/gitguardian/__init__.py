"""GitGuardian public API v1 client: `from clients.gitguardian import GitGuardianClient, ...`.

- `client.py`: `GitGuardianClient`, the one request path (auth, limiter, retries, logging,
  counting), its reads, listings and writes;
- `listings.py`: the list endpoints, mixed into the client;
- `paginated.py`: `Paginated[T]`, what every listing returns (iterate for items, `.pages()`
  for pages, `max_pages` to bound them);
- `settings.py`: `GitGuardianSettings.from_env()`, the GITGUARDIAN_* variables read in one
  place, and `client_from_env()` (URL, key, rate, retries, which limiter);
- `query.py`: filter, id, base-URL and key validation, before anything is sent;
- `errors.py`: the typed errors.
"""
from clients.gitguardian.client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_TIMEOUT,
    SLOW_WAIT_SECONDS,
    USER_AGENT,
    GitGuardianClient,
    path_template,
)
from clients.gitguardian.errors import (
    AuthenticationError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    GitGuardianError,
    InvalidResponse,
    MissingScope,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from clients.gitguardian.paginated import Paginated
from clients.gitguardian.query import (  # noqa: F401 - the filter tables, for tests and docs
    _ACTIVITY_FILTERS,
    _AUDIT_LOG_FILTERS,
    _INCIDENT_FILTERS,
    _INCIDENT_MEMBER_FILTERS,
    _MEMBER_FILTERS,
    _NOTE_FILTERS,
    _OCCURRENCE_FILTERS,
    _SOURCE_FILTERS,
    _TEAM_FILTERS,
    _TOKEN_FILTERS,
    INCIDENT_PERMISSIONS,
    MAX_PER_PAGE,
    build_query,
    check_api_key,
    check_base_url,
    iso_utc,
)
from clients.gitguardian.settings import GitGuardianSettings, client_from_env

__all__ = [
    "GitGuardianClient",
    "GitGuardianSettings",
    "Paginated",
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
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_REQUESTS_PER_MINUTE",
    "DEFAULT_TIMEOUT",
    "INCIDENT_PERMISSIONS",
    "MAX_PER_PAGE",
    "SLOW_WAIT_SECONDS",
    "USER_AGENT",
    "build_query",
    "check_api_key",
    "check_base_url",
    "client_from_env",
    "iso_utc",
    "path_template",
]
