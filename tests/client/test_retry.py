"""The one retry policy, and the typed exception of every status."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses

from clients.gitguardian import (
    AuthenticationError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    GitGuardianError,
    InvalidResponse,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from clients.retry import RetryPolicy, parse_retry_after
from tests.client.conftest import BASE, incident_json, note_json

INCIDENTS = f"{BASE}/v1/incidents/secrets"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# ------------------------------------------------------------------ the policy alone


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7", NOW) == 7.0
    later = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, NOW) == 30.0
    earlier = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("soon", NOW) is None


def test_backoff_is_exponential_with_full_jitter_and_capped():
    draws = iter([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.25])
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=5.0, random=lambda: next(draws))
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(3) == 0.0  # full jitter: anywhere from zero
    assert policy.delay(3) == 1.0  # a quarter of 4


def test_retry_after_wins_over_backoff_but_is_capped():
    policy = RetryPolicy(random=lambda: 1.0, max_retry_after=60, now=lambda: NOW)
    assert policy.delay(1, "12") == 12.0
    assert policy.delay(1, "3600") == 60.0


def test_attempts_are_bounded():
    policy = RetryPolicy(max_attempts=3)
    assert [policy.can_retry(n) for n in (1, 2, 3)] == [True, True, False]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_wait_uses_the_injected_sleeper(sleeps):
    policy = RetryPolicy(sleep=sleeps, random=lambda: 0.5, base_delay=2.0)
    assert policy.wait(2) == 2.0
    assert sleeps == [2.0]


# ------------------------------------------------------------------ the client's retries


@responses.activate
def test_429_with_retry_after_is_retried_then_succeeds(client, sleeps):
    responses.get(INCIDENTS + "/1", status=429, json={"detail": "Rate limited"},
                  headers={"Retry-After": "3"})
    responses.get(INCIDENTS + "/1", json=incident_json(1))
    assert client.incident(1).id == 1
    assert sleeps == [3.0]
    assert client.request_counts == {"GET /v1/incidents/secrets/{id}": 2}


@responses.activate
def test_429_is_retried_even_for_a_write_that_must_not_repeat(client, sleeps):
    responses.post(INCIDENTS + "/1/notes", status=429, headers={"Retry-After": "1"})
    responses.post(INCIDENTS + "/1/notes", status=201, json=note_json(1, "x"))
    assert client.add_note(1, "x").id == 1
    assert sleeps == [1.0]


@responses.activate
def test_429_after_every_attempt_raises_rate_limited(make_client, sleeps):
    client = make_client(max_attempts=3)
    responses.get(INCIDENTS + "/1", status=429, json={"detail": "Too many"},
                  headers={"Retry-After": "2"})
    with pytest.raises(RateLimited) as caught:
        client.incident(1)
    assert caught.value.status == 429 and caught.value.retry_after == 2.0
    assert len(responses.calls) == 3 and sleeps == [2.0, 2.0]


@responses.activate
def test_5xx_on_get_is_retried_with_backoff(client, sleeps):
    responses.get(INCIDENTS + "/1", status=502, body="<html>bad gateway</html>")
    responses.get(INCIDENTS + "/1", status=500, json={"detail": "oops"})
    responses.get(INCIDENTS + "/1", json=incident_json(1))
    assert client.incident(1).id == 1
    # random() = 0.5 of 1 s then of 2 s
    assert sleeps == [0.5, 1.0]


@responses.activate
def test_5xx_attempts_are_bounded(make_client, sleeps):
    client = make_client(max_attempts=2)
    responses.get(INCIDENTS + "/1", status=503, json={"detail": "maintenance"},
                  headers={"X-Maintenance": "true"})
    with pytest.raises(ServerError) as caught:
        client.incident(1)
    assert len(responses.calls) == 2
    assert caught.value.status == 503 and "maintenance" in caught.value.detail


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
@responses.activate
def test_4xx_is_never_retried(client, sleeps, status):
    responses.get(INCIDENTS + "/1", status=status, json={"detail": "no"})
    with pytest.raises(GitGuardianError):
        client.incident(1)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_add_note_is_not_repeated_after_a_5xx(client, sleeps):
    responses.post(INCIDENTS + "/1/notes", status=502, json={"detail": "upstream"})
    responses.post(INCIDENTS + "/1/notes", status=201, json=note_json(1, "x"))
    with pytest.raises(ServerError):
        client.add_note(1, "x")
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_share_is_not_repeated_after_a_connection_error(client, sleeps):
    responses.post(INCIDENTS + "/1/share", body=requests.ConnectionError("reset"))
    with pytest.raises(ConnectionFailed):
        client.share(1)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_harmless_writes_are_repeated_after_a_5xx(client):
    responses.post(INCIDENTS + "/1/resolve", status=500, json={"detail": "oops"})
    responses.post(INCIDENTS + "/1/resolve", json=incident_json(1, status="RESOLVED"))
    assert client.resolve(1, secret_revoked=False).status == "RESOLVED"
    assert len(responses.calls) == 2


@responses.activate
def test_connection_error_then_success(client, sleeps):
    responses.get(INCIDENTS + "/1", body=requests.ConnectionError("refused"))
    responses.get(INCIDENTS + "/1", json=incident_json(1))
    assert client.incident(1).id == 1
    assert len(sleeps) == 1


@responses.activate
def test_timeout_exhausts_attempts_into_connection_failed(make_client, sleeps):
    client = make_client(max_attempts=3)
    responses.get(INCIDENTS + "/1", body=requests.ReadTimeout("slow"))
    with pytest.raises(ConnectionFailed) as caught:
        client.incident(1)
    assert "timed out" in str(caught.value)
    assert len(responses.calls) == 3 and len(sleeps) == 2


def test_max_retries_sets_the_bound():
    from clients.gitguardian import GitGuardianClient

    assert GitGuardianClient(BASE, "k", max_retries=0).retry.max_attempts == 1
    assert GitGuardianClient(BASE, "k", max_retries=5).retry.max_attempts == 6


# ------------------------------------------------------------------ each status's exception


@pytest.mark.parametrize(
    "status, detail, error",
    [
        (401, "Invalid API key.", AuthenticationError),
        (403, "Permission denied.", PermissionDenied),
        (404, "Not found.", NotFound),
        (409, "Request conflicts with existing data.", Conflict),
        (400, "bad", BadRequest),
    ],
)
@responses.activate
def test_status_gives_its_exception(client, status, detail, error):
    responses.post(INCIDENTS + "/8/share", status=status, json={"detail": detail})
    with pytest.raises(error) as caught:
        client.share(8)
    exc = caught.value
    assert (exc.status, exc.detail, exc.method, exc.path) == (
        status, detail, "POST", "/v1/incidents/secrets/8/share"
    )
    assert detail in str(exc) and BASE not in str(exc)


@responses.activate
def test_non_json_error_body_is_readable(client):
    html = "<html>\x00\x1b[31m" + "Bad gateway " * 40 + "</html>"
    responses.get(f"{BASE}/v1/health", status=418, body=html, content_type="text/html")
    with pytest.raises(BadRequest) as caught:
        client.health()
    detail = caught.value.detail
    assert detail.startswith("<html>") and "Bad gateway" in detail
    assert len(detail) <= 200 and "\x00" not in detail and "\x1b" not in detail


@responses.activate
def test_non_json_success_is_invalid_response(client):
    responses.get(INCIDENTS + "/1", body="<html>login</html>", content_type="text/html")
    with pytest.raises(InvalidResponse):
        client.incident(1)


@responses.activate
def test_wrong_shape_is_invalid_response(client):
    responses.get(INCIDENTS, json={"detail": "not a list"})
    with pytest.raises(InvalidResponse):
        list(client.incidents())
    responses.get(INCIDENTS + "/1", json={"id": "not-a-number", "status": "TRIGGERED"})
    with pytest.raises(InvalidResponse):
        client.incident(1)
