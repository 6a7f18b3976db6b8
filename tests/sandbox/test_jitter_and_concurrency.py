"""Network-like jitter (seeded, apart from the fault sequence) and a server that serves
concurrent requests concurrently: a delayed or hooked request never holds up another."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

import sandbox
from sandbox.__main__ import _parser
from sandbox.adversity import Adversity
from tests.sandbox.workspace_builder import build_workspace


@pytest.fixture
def box() -> Iterator[sandbox.Sandbox]:
    with sandbox.running(workspace=build_workspace(12)) as running_box:
        yield running_box


def get(box, path: str = "/v1/health") -> requests.Response:
    return requests.get(box.url + path, headers={"Authorization": f"Token {box.token}"},
                        timeout=10)


def at_once(box, count: int, path: str = "/v1/health") -> tuple[float, list[int]]:
    """Send `count` requests from as many threads released together: (seconds, codes)."""
    barrier = threading.Barrier(count)

    def one(_: int) -> int:
        barrier.wait()
        return get(box, path).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        codes = list(pool.map(one, range(count)))
    return time.monotonic() - started, codes


# ---------------------------------------------------------------- jitter


def test_jitter_is_uniform_within_its_bound_and_seeded():
    def delays(seed: int) -> list[float]:
        adversity = Adversity(latency_ms=100, jitter_ms=50, seed=seed)
        return [adversity.decide("Token k").delay_seconds for _ in range(200)]

    first = delays(4)
    assert first == delays(4)  # the same sequence for a seed
    assert first != delays(5)
    assert all(0.1 <= d <= 0.15 for d in first)
    assert max(first) - min(first) > 0.04  # spread over the range, not a constant
    assert all(f.delay_seconds == 0.1 for f in
               (Adversity(latency_ms=100, seed=4).decide("Token k") for _ in range(5)))


def test_jitter_leaves_the_fault_and_reset_sequence_of_a_seed_as_it_was():
    def fates(**options: int) -> list[tuple]:
        adversity = Adversity(faults=0.3, resets=0.2, seed=9, **options)
        return [(f.status, f.reset, f.maintenance) for f in
                (adversity.decide("Token k") for _ in range(300))]

    assert fates() == fates(jitter_ms=80) == fates(jitter_ms=80, latency_ms=5)
    assert Adversity(jitter_ms=1).active and not Adversity().active
    with pytest.raises(ValueError):
        Adversity(jitter_ms=-1)


def test_jitter_reaches_the_server_from_running_set_adversity_and_the_cli():
    with sandbox.running(workspace=build_workspace(4), jitter_ms=40, seed=3) as box:
        adversity = box._app.state.adversity
        assert (adversity.jitter_ms, adversity.seed) == (40, 3)
        assert get(box).status_code == 200
        assert box.set_adversity(jitter_ms=25).jitter_ms == 25
        assert get(box).status_code == 200
    args = _parser().parse_args(["serve", "--jitter-ms", "30"])
    assert args.jitter_ms == 30
    assert _parser().parse_args(["serve"]).jitter_ms == 0


# ---------------------------------------------------------------- concurrency


def test_two_delayed_requests_sent_at_once_take_one_delay_not_two(box):
    box.set_adversity(latency_ms=300)
    get(box)  # a first request pays the server's warm-up
    elapsed, codes = at_once(box, 2)
    assert codes == [200, 200]
    assert 0.3 <= elapsed < 0.55, elapsed  # one after the other would take 0.6 s


def test_many_jittered_requests_are_served_concurrently(box):
    box.set_adversity(latency_ms=200, jitter_ms=100, seed=2)
    get(box)
    elapsed, codes = at_once(box, 8, "/v1/incidents/secrets")
    assert codes == [200] * 8
    assert elapsed < 0.55, elapsed  # at most 0.3 s each, together; in turn at least 1.6 s


def test_a_slow_hook_holds_up_only_its_own_request(box):
    release = threading.Event()
    box.before("GET", "/v1/members", lambda b: release.wait(5))
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(get, box, "/v1/members")
        started = time.monotonic()
        assert get(box).status_code == 200  # answered while the hook still waits
        assert time.monotonic() - started < 1.0
        assert not held.done()
        release.set()
        assert held.result(timeout=10).status_code == 200
