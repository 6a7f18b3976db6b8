"""Rate limiters, so runs stay under GitGuardian's per-key limit instead of bouncing off 429s.

`RateLimiter`: thread-safe, one process (the client's own, by default). `SharedRateLimiter`:
one limit for every worker, kept by the Prefect server (see below). The client takes either
through its `rate_limiter` argument (anything with `acquire()`); `GitGuardianSettings`
(`clients/gitguardian/settings.py`) picks one from the environment.

It is a GCRA ("virtual scheduling") limiter: each caller reserves the next free slot under a
lock, then sleeps outside the lock until that slot. Up to `burst` requests go at once after a
quiet spell; the spacing is chosen so that no 60-second window ever holds more than
`requests_per_minute` requests, bursts included. Clock and sleeper are injected for tests.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# The Prefect global concurrency limit every worker shares (created by `deployments.setup`).
LIMIT_NAME = "gitguardian-api"


def local_burst(requests_per_minute: int) -> int:
    """The burst of a limiter of `requests_per_minute`: small, paid back by the spacing."""
    return max(1, min(10, requests_per_minute // 10))


class RateLimiter:
    def __init__(
        self,
        requests_per_minute: int,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute < 1:
            raise ValueError("requests_per_minute must be 1 or more")
        if burst is None:
            # A small burst keeps short runs snappy; the spacing below pays it back.
            burst = local_burst(requests_per_minute)
        if not 1 <= burst <= requests_per_minute:
            raise ValueError("burst must be between 1 and requests_per_minute")
        self.requests_per_minute = requests_per_minute
        self.burst = burst
        # Any 60 s window then holds at most burst + (rpm - burst) = rpm slots. The tiny
        # margin keeps float rounding from squeezing one slot too many into a minute.
        self.interval = 60.0 / (requests_per_minute - burst + 1) * (1 + 1e-6)
        self._tolerance = (burst - 1) * self.interval
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._theoretical_arrival: float | None = None

    def reserve(self) -> tuple[float, float]:
        """Reserve the next slot: returns (now, slot time). Does not sleep."""
        with self._lock:
            now = self._clock()
            tat = now if self._theoretical_arrival is None else max(self._theoretical_arrival, now)
            slot = max(now, tat - self._tolerance)
            self._theoretical_arrival = max(tat, slot) + self.interval
            return now, slot

    def acquire(self) -> float:
        """Block until this caller may send one request; returns the granted slot time."""
        now, slot = self.reserve()
        if slot > now:
            self._sleep(slot - now)
        return slot

    def __repr__(self) -> str:
        return f"RateLimiter(requests_per_minute={self.requests_per_minute}, burst={self.burst})"


# ------------------------------------------------------------------ one limit for every worker
#
# GitGuardian counts requests per API token, whatever machine sends them; each client's own
# limiter only knows its process. With several workers (or several runs at once) they share a
# Prefect global concurrency limit with slot decay, `gitguardian-api`, created by
# `python -m deployments.setup`: each request first takes one slot, and slots free up at a
# steady rate. Sizing, for R requests a minute: a burst of B slots (as the local limiter) and a
# decay of (R - B) / 60 slots a second, so no 60-second window holds more than R requests.


def sizing(requests_per_minute: int) -> tuple[int, float]:
    """(slots, decay per second) so that no minute holds more than `requests_per_minute`."""
    if requests_per_minute <= 0:
        raise ValueError("a shared limit needs a positive number of requests per minute")
    burst = local_burst(requests_per_minute)
    decay = max(requests_per_minute - burst, 1) / 60.0
    return burst, decay


class SharedRateLimiter:
    """`acquire()` blocks until the server-side limit grants one request slot.

    If the Prefect API cannot be reached the call falls back to `fallback` (the local limiter)
    instead of failing the run: the local limit still holds for this process. Prefect is
    imported on the first `acquire()` only: the clients stay plain Python.
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
    if not requests_per_minute:
        return None  # limiting disabled (sandbox, self-hosted without limits)
    local = RateLimiter(requests_per_minute)
    if not os.environ.get("PREFECT_API_URL"):
        return local
    return SharedRateLimiter(fallback=local)
