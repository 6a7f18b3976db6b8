"""The client-side rate limiter holds its rate, also under concurrent threads (fake clock)."""
from __future__ import annotations

import bisect
import threading

import pytest
import responses

from clients.ratelimit import RateLimiter
from tests.client.conftest import BASE


class FakeClock:
    """A clock that moves only when told to, safe to read from many threads."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def busiest_minute(slots: list[float]) -> int:
    """The largest number of slots in any half-open 60-second window."""
    ordered = sorted(slots)
    return max(bisect.bisect_left(ordered, t + 60.0) - i for i, t in enumerate(ordered))


def test_sequential_callers_are_spaced_after_the_burst():
    clock, sleeps = FakeClock(), []
    limiter = RateLimiter(60, burst=1, clock=clock, sleep=sleeps.append)
    slots = [limiter.acquire() for _ in range(5)]
    assert slots == pytest.approx([1000.0, 1001.0, 1002.0, 1003.0, 1004.0], rel=1e-5)
    assert sleeps == pytest.approx([1.0, 2.0, 3.0, 4.0], rel=1e-5)


def test_idle_time_is_not_banked_beyond_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(60, burst=3, clock=clock, sleep=lambda s: None)
    clock.advance(3600)
    slots = [limiter.acquire() for _ in range(6)]
    assert slots[:3] == [4600.0] * 3  # the burst
    assert all(b > a for a, b in zip(slots[2:], slots[3:]))  # then spaced
    assert busiest_minute(slots) <= 60


@pytest.mark.parametrize("rpm, burst", [(200, None), (50, 1), (120, 20)])
def test_rate_holds_under_concurrent_threads(rpm, burst):
    clock = FakeClock()
    slots: list[float] = []
    slots_lock = threading.Lock()
    limiter = RateLimiter(rpm, burst=burst, clock=clock, sleep=lambda s: None)
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for n in range(60):
            slot = limiter.acquire()
            with slots_lock:
                slots.append(slot)
            if n % 7 == 0:
                clock.advance(0.05)  # time passes unevenly while threads run

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(slots) == 480 and len(set(slots)) >= 480 - limiter.burst
    assert busiest_minute(slots) <= rpm
    # ...and it is not needlessly slow: a busy minute uses nearly all of the allowance
    # (the burst is paid back by spacing slots at rpm - burst + 1 a minute).
    assert busiest_minute(slots) >= rpm - limiter.burst + 1


def test_sleeps_for_the_wait_of_its_slot():
    clock, sleeps = FakeClock(), []
    limiter = RateLimiter(120, burst=2, clock=clock, sleep=sleeps.append)
    limiter.acquire(), limiter.acquire()
    assert sleeps == []
    limiter.acquire()
    assert sleeps == [pytest.approx(60 / 119, rel=1e-5)]


def test_bad_settings_refused():
    with pytest.raises(ValueError):
        RateLimiter(0)
    with pytest.raises(ValueError):
        RateLimiter(10, burst=11)


@responses.activate
def test_client_asks_the_limiter_before_every_request(make_client):
    class CountingLimiter:
        calls = 0

        def acquire(self) -> float:
            self.calls += 1
            return 0.0

    limiter = CountingLimiter()
    client = make_client(rate_limiter=limiter)
    responses.get(f"{BASE}/v1/health", status=429, headers={"Retry-After": "0"})
    responses.get(f"{BASE}/v1/health", json={"detail": "Valid API key."})
    client.health()
    assert limiter.calls == 2  # retries pass through the limiter too


def test_client_default_limiter_is_the_business_personal_limit():
    from clients.gitguardian import GitGuardianClient

    assert GitGuardianClient(BASE, "k").rate_limiter.requests_per_minute == 200
    assert GitGuardianClient(BASE, "k", requests_per_minute=None).rate_limiter is None
