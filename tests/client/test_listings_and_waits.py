"""Listings (`Paginated`: items, pages, max_pages, request counts) and the WARNING a long wait
leaves in the log (rate limit, Retry-After), naming the endpoint and the seconds, never the key
or the query."""
from __future__ import annotations

import logging
import time

import pytest
import responses

import clients.gitguardian.client as client_module
from clients.gitguardian import Paginated
from tests.client.conftest import BASE, KEY, incident_json

INCIDENTS = f"{BASE}/v1/incidents/secrets"
LISTED = "GET /v1/incidents/secrets"


def _three_pages() -> None:
    for number in range(3):
        link = {"Link": f'<{INCIDENTS}?cursor=c{number + 1}&per_page=2>; rel="next"'}
        responses.get(
            INCIDENTS,
            match=[responses.matchers.query_param_matcher(
                {"per_page": "2", "status": "TRIGGERED"} if number == 0
                else {"cursor": f"c{number}", "per_page": "2"})],
            json=[incident_json(2 * number + 1), incident_json(2 * number + 2)],
            headers=link if number < 2 else {},
        )


@responses.activate
def test_one_listing_gives_items_or_pages_and_sends_nothing_until_iterated(client):
    _three_pages()
    listing = client.incidents(per_page=2, status="TRIGGERED")
    assert isinstance(listing, Paginated) and len(responses.calls) == 0
    assert [i.id for i in listing] == [1, 2, 3, 4, 5, 6]
    assert client.request_counts[LISTED] == 3
    assert [[i.id for i in page] for page in listing.pages()] == [[1, 2], [3, 4], [5, 6]]
    assert client.request_counts[LISTED] == 6  # each iteration reads afresh: nothing cached


@responses.activate
def test_max_pages_stops_the_requests(client):
    _three_pages()
    assert [i.id for i in client.incidents(per_page=2, status="TRIGGERED", max_pages=2)] == [
        1, 2, 3, 4]
    assert client.request_counts[LISTED] == 2
    first = next(client.incidents(per_page=2, status="TRIGGERED", max_pages=1).pages())
    assert [i.id for i in first] == [1, 2] and client.request_counts[LISTED] == 3
    with pytest.raises(ValueError):
        client.incidents(max_pages=0)


# ------------------------------------------------------------------ long waits, said


@responses.activate
def test_a_long_retry_after_is_a_warning_with_endpoint_and_seconds(client, sleeps, caplog):
    url = f"{INCIDENTS}/4711/notes"
    responses.get(url, status=429, headers={"Retry-After": "12"}, json={"detail": "slow down"})
    responses.get(url, json=[])
    with caplog.at_level(logging.WARNING, logger="clients.gitguardian"):
        assert list(client.notes(4711, search="decision-secret-query")) == []
    assert sleeps == [12.0]
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = record.getMessage()
    assert "GET /v1/incidents/secrets/{id}/notes" in text and "12.0 s" in text
    assert "Retry-After" in text and "429" in text
    assert "4711" not in text and "decision-secret-query" not in text and KEY not in text


@responses.activate
def test_a_short_wait_stays_quiet(client, sleeps, caplog):
    responses.get(INCIDENTS + "/1", status=429, headers={"Retry-After": "2"})
    responses.get(INCIDENTS + "/1", json=incident_json(1))
    with caplog.at_level(logging.WARNING, logger="clients.gitguardian"):
        client.incident(1)
    assert sleeps == [2.0]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@responses.activate
def test_a_long_wait_for_the_rate_limiter_is_a_warning(make_client, caplog, monkeypatch):
    class SlowLimiter:
        def acquire(self) -> float:
            time.sleep(0.05)
            return 0.0

    monkeypatch.setattr(client_module, "SLOW_WAIT_SECONDS", 0.01)
    client = make_client(rate_limiter=SlowLimiter())
    responses.get(INCIDENTS + "/1", json=incident_json(1))
    with caplog.at_level(logging.WARNING, logger="clients.gitguardian"):
        client.incident(1)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "GET /v1/incidents/secrets/{id}" in record.getMessage()
    assert "rate limit" in record.getMessage() and KEY not in record.getMessage()
