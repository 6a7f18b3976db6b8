"""The one retry policy of the API client: bounded attempts, exponential backoff with full
jitter, and the server's `Retry-After` honoured (whole seconds or an HTTP date).

Sleep, randomness and the clock are injected so tests never wait for real.
"""
from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def _utc_now() -> datetime:
    return datetime.now(UTC)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header value, or None when absent or unreadable.

    RFC 9110 allows delay-seconds or an HTTP date; a date in the past means "now" (0).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or _utc_now()
    return max(0.0, (when - now).total_seconds())


@dataclass
class RetryPolicy:
    """How many times, and how long between, a failed request is tried again.

    `max_attempts` counts every try (1 = never retry). Backoff for the n-th retry is a uniform
    draw in [0, min(max_delay, base_delay * 2**(n-1))] ("full jitter": clients that failed
    together do not come back together). A server's Retry-After wins over the draw, capped at
    `max_retry_after` so a confused server cannot park a flow for hours.
    """

    max_attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    random: Callable[[], float] = field(default=_random.random, repr=False)
    now: Callable[[], datetime] = field(default=_utc_now, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def can_retry(self, attempt: int) -> bool:
        """True when another try may follow the `attempt`-th (1-based) one."""
        return attempt < self.max_attempts

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait after the `attempt`-th (1-based) try failed."""
        server_says = parse_retry_after(retry_after, self.now())
        if server_says is not None:
            return min(server_says, self.max_retry_after)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.random() * ceiling

    def wait(self, attempt: int, retry_after: str | None = None) -> float:
        """Sleep before the next try; returns the seconds slept."""
        seconds = self.delay(attempt, retry_after)
        if seconds > 0:
            self.sleep(seconds)
        return seconds
