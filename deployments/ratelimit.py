"""One GitGuardian rate limit shared by every worker, kept by the Prefect server.

GitGuardian counts requests per API token, whatever machine sends them; each client's own
limiter only knows its process. With several workers (or several runs at once) they share a
Prefect global concurrency limit with slot decay, `gitguardian-api`, created by
`python -m deployments.setup`: each request first takes one slot, and slots free up at a
steady rate.

Sizing, for R requests a minute: a burst of B = max(1, min(10, R // 10)) slots (as the
client's own limiter) and a decay
of (R - B) / 60 slots a second, so no 60-second window holds more than B + (R - B) = R requests.

The client takes it through its `rate_limiter` argument (anything with `acquire()`):

    GitGuardianClient(url, key, rate_limiter=shared_limiter(requests_per_minute))

which gives the shared limiter when a Prefect API is configured and the limit exists, and
the client's local limiter otherwise (no server, tests, the sandbox).
"""
from __future__ import annotations

import logging
import os
import time
from typing import Any

logger = logging.getLogger(__name__)

LIMIT_NAME = "gitguardian-api"
DEFAULT_REQUESTS_PER_MINUTE = 200  # the client's default: Business plan, personal access token


def requests_per_minute_from_env() -> int:
    """GITGUARDIAN_REQUESTS_PER_MINUTE, else the client's default; 0 means no limit."""
    text = os.environ.get("GITGUARDIAN_REQUESTS_PER_MINUTE", "").strip()
    return int(text) if text else DEFAULT_REQUESTS_PER_MINUTE


def sizing(requests_per_minute: int) -> tuple[int, float]:
    """(slots, decay per second) so that no minute holds more than `requests_per_minute`."""
    if requests_per_minute <= 0:
        raise ValueError("a shared limit needs a positive number of requests per minute")
    burst = max(1, min(10, requests_per_minute // 10))  # the client's local burst
    decay = max(requests_per_minute - burst, 1) / 60.0
    return burst, decay


class SharedRateLimiter:
    """`acquire()` blocks until the server-side limit grants one request slot.

    If the Prefect API cannot be reached the call falls back to `fallback` (the local limiter)
    instead of failing the run: the local limit still holds for this process.
    """

    def __init__(self, name: str = LIMIT_NAME, *, fallback: Any = None,
                 timeout_seconds: float = 120.0):
        self.name, self.fallback, self.timeout_seconds = name, fallback, timeout_seconds
        self.shared_failures = 0

    def acquire(self) -> float:
        from prefect.concurrency.sync import rate_limit

        if self.shared_failures:  # once missing or unreachable, stop asking on every request
            return self.fallback.acquire() if self.fallback is not None else 0.0
        started = time.monotonic()
        try:
            # strict: a missing limit raises instead of silently granting every request
            rate_limit(self.name, occupy=1, timeout_seconds=self.timeout_seconds, strict=True)
        except Exception as exc:  # noqa: BLE001 - any failure falls back to the local limit
            self.shared_failures += 1
            if self.shared_failures == 1:
                logger.warning("shared rate limit %r not used (%s): local limit only",
                               self.name, type(exc).__name__)
            return self.fallback.acquire() if self.fallback is not None else 0.0
        return time.monotonic() - started

    def __repr__(self) -> str:
        return f"SharedRateLimiter(name={self.name!r}, fallback={self.fallback!r})"


def shared_limiter(requests_per_minute: int | None) -> Any:
    """The limiter a client should use here: shared when a Prefect API is set, else local."""
    from clients.ratelimit import RateLimiter

    if not requests_per_minute:
        return None  # limiting disabled (sandbox, self-hosted without limits)
    local = RateLimiter(requests_per_minute)
    if not os.environ.get("PREFECT_API_URL"):
        return local
    return SharedRateLimiter(fallback=local)
