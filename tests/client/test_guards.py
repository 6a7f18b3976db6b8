"""Guards: base URL, key, filters checked before sending; the key never leaks; models tolerant."""
from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import requests
import responses

from clients.gitguardian import (
    DEFAULT_BASE_URL,
    AuthenticationError,
    ConnectionFailed,
    GitGuardianClient,
    GitGuardianError,
    client_from_env,
)
from clients.models import Incident, IncidentStatus, Share
from tests.client.conftest import BASE, incident_json

SECRET_KEY = "test-token-should-never-show-0123456789"


# ------------------------------------------------------------------ base URL and key


@pytest.mark.parametrize(
    "url",
    ["http://api.gitguardian.com", "http://10.0.0.5:8000", "ftp://api.gg.test", "api.gg.test",
     "https://user:pw@api.gg.test", ""],
)
def test_base_url_refused(url):
    with pytest.raises(ValueError):
        GitGuardianClient(url, "k")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8123", "http://localhost:9000/", "http://[::1]:80", "https://api.gg.test/"],
)
def test_base_url_accepted(url):
    client = GitGuardianClient(url, "k", requests_per_minute=None)
    assert not client.base_url.endswith("/")


@pytest.mark.parametrize("key", ["", "has space", "tab\there", "caf\u00e9", None])
def test_bad_key_refused_with_a_clear_message(key):
    with pytest.raises(ValueError) as caught:
        GitGuardianClient(BASE, key)
    assert "API key" in str(caught.value)
    if key:
        assert key not in str(caught.value)


def test_from_env(monkeypatch):
    monkeypatch.setenv("GITGUARDIAN_API_KEY", "test-token-env")
    monkeypatch.delenv("GITGUARDIAN_API_URL", raising=False)
    assert client_from_env(requests_per_minute=None).base_url == DEFAULT_BASE_URL
    monkeypatch.setenv("GITGUARDIAN_API_URL", "http://127.0.0.1:8999")
    assert client_from_env().base_url == "http://127.0.0.1:8999"
    monkeypatch.delenv("GITGUARDIAN_API_KEY")
    with pytest.raises(ValueError):
        client_from_env()


# ------------------------------------------------------------------ the key never shows


@responses.activate
def test_key_absent_from_repr_logs_and_exceptions(caplog):
    client = GitGuardianClient(BASE, SECRET_KEY, requests_per_minute=None, max_retries=0)
    assert SECRET_KEY not in repr(client) and SECRET_KEY not in str(vars(client))
    # A server that echoes the key in its error text must not get it into our exception.
    responses.get(f"{BASE}/v1/health", status=401, json={"detail": f"Invalid API key {SECRET_KEY}"})
    responses.get(f"{BASE}/v1/api_tokens/self", body=requests.ConnectionError(SECRET_KEY[:5]))
    texts = []
    with caplog.at_level(logging.DEBUG):
        for call in (client.health, client.token_info):
            with pytest.raises(GitGuardianError) as caught:
                call()
            texts += [str(caught.value), repr(caught.value), caught.value.detail]
    assert isinstance(caught.value, ConnectionFailed)
    assert responses.calls[0].request.headers["Authorization"] == f"Token {SECRET_KEY}"
    logged = caplog.text
    assert "GET /v1/health -> 401" in logged  # debug logging happens...
    for text in texts + [logged]:
        assert SECRET_KEY not in text  # ...without the key


@responses.activate
def test_401_detail_is_the_servers_text(client):
    responses.get(f"{BASE}/v1/health", status=401, json={"detail": "Invalid API key."})
    with pytest.raises(AuthenticationError) as caught:
        client.health()
    assert caught.value.detail == "Invalid API key."


def test_share_urls_hidden_from_repr_and_dumps():
    url = "https://dashboard.gg.test/share/incidents/fake-" + "z" * 10
    incident = Incident.model_validate(incident_json(1, share_url=url))
    assert incident.is_shared and url not in repr(incident)
    assert url not in str(incident.model_dump()) and url not in incident.model_dump_json()
    share = Share.model_validate({"share_url": url, "token": "fake-tok-123", "incident_id": 1})
    assert url not in repr(share) and "fake-tok-123" not in repr(share)


# ------------------------------------------------------------------ filters before sending


@pytest.mark.parametrize(
    "method, filters",
    [
        ("incidents", {"statuss": "TRIGGERED"}),  # misspelt: the server would return everything
        ("incidents", {"status": "OPEN"}),
        ("incidents", {"status": ["TRIGGERED", "open"]}),
        ("incidents", {"severity": "CRITICAL"}),  # case-sensitive
        ("incidents", {"date_after": "last tuesday"}),
        ("incidents", {"date_after": datetime(2026, 1, 1)}),  # naive: which zone?
        ("incidents", {"feedback": "yes"}),
        ("incidents", {"assignee_id": "abc"}),
        ("incidents", {"risk_score_min": 101}),
        ("incidents", {"ordering": "name"}),
        ("incidents", {"tags": "NOT_A_TAG"}),
        ("incidents", {"per_page": 0}),
        ("incidents", {"per_page": 101}),
        ("incidents", {"page": 2}),  # deprecated, never used
        ("occurrences", {"filepath": "ab"}),  # 3+ characters
        ("occurrences", {"presence": "gone"}),
        ("occurrences", {"source_full_name": "acme/app"}),
        ("members", {"active": 1}),
        ("members", {"access_level": "admin"}),
        ("audit_logs", {"member_id": True}),
        ("sources", {"health": "fine"}),
    ],
)
@responses.activate
def test_bad_filters_raise_before_any_request(client, method, filters):
    with pytest.raises(ValueError):
        getattr(client, method)(**filters)  # the listing validates at the call, not at iteration
    assert len(responses.calls) == 0


@responses.activate
def test_note_filters_checked(client):
    with pytest.raises(ValueError):
        client.notes(3, ordering="date")
    with pytest.raises(ValueError):
        client.source_incidents(3, source_name="acme/app")
    assert len(responses.calls) == 0


# ------------------------------------------------------------------ models


def test_unknown_enum_values_and_fields_are_kept():
    incident = Incident.model_validate(
        incident_json(1, status="ESCALATED", severity="apocalyptic", brand_new_field={"a": 1},
                      tags=["PUBLIC", "SOMETHING_NEW"])
    )
    assert incident.status == "ESCALATED" and incident.severity == "apocalyptic"
    assert incident.brand_new_field == {"a": 1}
    assert incident.tags == ["PUBLIC", "SOMETHING_NEW"]
    assert not incident.is_open


def test_known_values_compare_with_constants_and_times_are_utc():
    incident = Incident.model_validate(
        incident_json(1, status="ASSIGNED", triggered_at="2026-01-02T05:00:00+02:00")
    )
    assert incident.status == IncidentStatus.ASSIGNED and incident.is_open
    assert incident.triggered_at == datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    assert incident.triggered_at.utcoffset().total_seconds() == 0
    assert incident.date.tzinfo is not None


def test_nullable_fields_accept_null():
    incident = Incident.model_validate(
        incident_json(1, assignee_email=None, public_exposure=None, resolved_at=None,
                      risk_score=None)
    )
    assert incident.public_exposure is None and incident.assignee_email is None
