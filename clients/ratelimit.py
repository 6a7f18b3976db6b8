"""A thread-safe client-side rate limiter, so runs stay under GitGuardian's per-key limit
instead of bouncing off 429s.

It is a GCRA ("virtual scheduling") limiter: each caller reserves the next free slot under a
lock, then sleeps outside the lock until that slot. Up to `burst` requests go at once after a
quiet spell; the spacing is chosen so that no 60-second window ever holds more than
`requests_per_minute` requests, bursts included. Clock and sleeper are injected for tests.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


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
            burst = max(1, min(10, requests_per_minute // 10))
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
