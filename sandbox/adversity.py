"""Trouble on demand: rate limits, server errors, connection resets and latency.

Deterministic from a seed: the n-th request meets the same fate on every run, so a test that
fails under faults fails again when re-run. The clock is injectable so that tests can let
"a minute pass" without sleeping.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Fate:
    """What happens to one request before the API sees it."""

    status: int | None = None  # an error answer instead of the real one
    retry_after: int | None = None  # whole seconds, with a 429
    maintenance: bool = False  # 503 with `X-Maintenance: true`
    reset: bool = False  # drop the connection without answering
    delay_seconds: float = 0.0


@dataclass
class Adversity:
    """Per-token fixed-window rate limit, random 5xx, resets and latency.

    rate_limit: requests per window per token (None: unlimited), like GitGuardian's per-key
    limits; a refused request is not counted and gets `Retry-After` in whole seconds.
    faults: probability of a 500, 502 or 503 (503s carry `X-Maintenance: true`).
    resets: probability that the connection is dropped without an answer.
    latency_ms: added to every answer.
    jitter_ms: each request waits an extra uniform 0..jitter_ms ms, drawn from a generator of
    its own (seeded from `seed`), so the fault and reset sequence of a seed stays the same.
    """

    rate_limit: int | None = None
    faults: float = 0.0
    resets: float = 0.0
    latency_ms: int = 0
    jitter_ms: int = 0
    seed: int = 0
    window_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _random: random.Random = field(init=False, repr=False)
    _jitter: random.Random = field(init=False, repr=False)
    _windows: dict[str, tuple[float, int]] = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("faults", "resets"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability between 0 and 1, got {value}")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError("rate_limit must be at least 1 request per window")
        for name in ("latency_ms", "jitter_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")
        self._random = random.Random(self.seed)
        self._jitter = random.Random(f"jitter-{self.seed}")
        self._windows = {}
        self._lock = threading.Lock()

    def decide(self, token_key: str) -> Fate:
        """The fate of the next request made with `token_key` (any stable text per token)."""
        with self._lock:
            delay = self.latency_ms / 1000.0
            if self.jitter_ms:
                delay += self._jitter.uniform(0, self.jitter_ms) / 1000.0
            if self.rate_limit is not None:
                wait = self._take(token_key)
                if wait is not None:
                    return Fate(status=429, retry_after=wait, delay_seconds=delay)
            # Draw both numbers every time so one setting does not shift the other's sequence.
            reset_draw, fault_draw, kind_draw = (self._random.random() for _ in range(3))
            if reset_draw < self.resets:
                return Fate(reset=True, delay_seconds=delay)
            if fault_draw < self.faults:
                status = (500, 502, 503)[int(kind_draw * 3) % 3]
                return Fate(status=status, maintenance=status == 503, delay_seconds=delay)
            return Fate(delay_seconds=delay)

    def _take(self, token_key: str) -> int | None:
        """Count one request in the token's window; seconds to wait when it is full."""
        now = self.clock()
        start, used = self._windows.get(token_key, (now, 0))
        if now - start >= self.window_seconds:
            start, used = now, 0
        if used >= self.rate_limit:  # type: ignore[operator]
            return max(1, math.ceil(start + self.window_seconds - now))
        self._windows[token_key] = (start, used + 1)
        return None

    @property
    def active(self) -> bool:
        return bool(self.rate_limit or self.faults or self.resets or self.latency_ms
                    or self.jitter_ms)
