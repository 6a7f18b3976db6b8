"""Replay every real recorded exchange in shared/contract/recorded through the client.

Each recorded request is registered with `responses` by its exact method, path and query; the
client must send that request, parse the recorded answer, and keep every recorded field.
"""
from __future__ import annotations

import json
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
import yaml
from pydantic import BaseModel, SecretStr
from responses import matchers

from clients.gitguardian import GitGuardianClient
from clients.models import AuditLog, Incident, Member, Note, Occurrence, Token, missing_scopes
from clients.retry import RetryPolicy

# shared/ lies beside the repository, for developers and CI alike.
CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "contract"
RECORDED = CONTRACT / "recorded"
TO_SERVE = CONTRACT / "to-serve"  # recordings of endpoints the sandbox serves since issue 20
SAAS = "https://api.gitguardian.com"


def cassette(name: str) -> list[dict[str, Any]]:
    folder = RECORDED if (RECORDED / name).exists() else TO_SERVE
    return yaml.safe_load((folder / name).read_text())["interactions"]


def register(interactions: list[dict[str, Any]], *, strict_query: bool = True) -> None:
    for exchange in interactions:
        request, answer = exchange["request"], exchange["response"]
        parts = urlsplit(request["uri"])
        headers = {
            name: values[0]
            for name, values in answer["headers"].items()
            if name.lower() in ("link", "retry-after")
        }
        match = []
        if strict_query:
            match.append(matchers.query_param_matcher(dict(parse_qsl(parts.query))))
        if request.get("body"):
            match.append(matchers.json_params_matcher(json.loads(request["body"])))
        responses.add(
            request["method"],
            f"{parts.scheme}://{parts.netloc}{parts.path}",
            body=answer["body"]["string"],
            status=answer["status"]["code"],
            headers=headers,
            content_type="application/json",
            match=match,
        )


def body(exchange: dict[str, Any]) -> Any:
    return json.loads(exchange["response"]["body"]["string"])


def assert_kept(model: BaseModel, raw: dict[str, Any], path: str = "") -> None:
    """Every recorded field is kept: declared fields with their value, unknown ones as extras."""
    for name, value in raw.items():
        where = f"{path}.{name}"
        assert hasattr(model, name), f"{where} lost"
        kept = getattr(model, name)
        if isinstance(kept, SecretStr):
            assert kept.get_secret_value() == value, where
        elif isinstance(kept, BaseModel):
            assert isinstance(value, dict), where
            assert_kept(kept, value, where)
        elif isinstance(kept, list) and kept and isinstance(kept[0], BaseModel):
            assert len(kept) == len(value), where
            for index, (item, raw_item) in enumerate(zip(kept, value)):
                assert_kept(item, raw_item, f"{where}[{index}]")
        elif hasattr(kept, "isoformat"):
            assert kept.tzinfo is not None and kept.utcoffset().total_seconds() == 0, where
            assert kept.isoformat().replace("+00:00", "Z")[:19] == value[:19], where
        else:
            assert kept == value, where


@pytest.fixture
def saas() -> GitGuardianClient:
    return GitGuardianClient(
        SAAS, "test-token-full", requests_per_minute=None,
        retry=RetryPolicy(max_attempts=1, sleep=lambda s: None),
    )


def test_every_cassette_is_covered():
    names = {p.name for p in RECORDED.glob("*.yaml")}
    assert names == {
        "create_and_update_incident_note.yaml", "get_audit_logs.yaml",
        "get_current_token_info.yaml", "get_incident.yaml", "list_incident_notes.yaml",
        "list_incidents_basic.yaml", "list_incidents_get_all.yaml", "list_members.yaml",
        "list_occurrences_basic.yaml",
    }, "a new recording appeared: add a replay test for it"
    assert {p.name for p in TO_SERVE.glob("*.yaml")} == {
        "list_api_tokens.yaml", "list_incident_activity_logs.yaml",
        "list_incident_members.yaml", "list_member_incidents.yaml",
    }, "a new recording appeared in to-serve/: add a replay test for it"


@responses.activate
def test_member_incidents(saas):
    exchanges = cassette("list_member_incidents.yaml")
    register(exchanges, strict_query=False)
    me = saas.token_info()
    assert saas.member(me.member_id).id == me.member_id
    page = next(saas.member_incidents(me.member_id, per_page=20).pages())
    raw = body(exchanges[2])
    assert [i.id for i in page] == [r["id"] for r in raw]
    for incident, item in zip(page, raw):
        assert_kept(incident, item)
    assert "/v1/members/480870/secret-incidents" in responses.calls[-1].request.url


@responses.activate
def test_incident_activity_logs(saas):
    exchanges = cassette("list_incident_activity_logs.yaml")
    register(exchanges, strict_query=False)
    page = next(saas.activity_logs(21460, per_page=20).pages())
    raw = body(exchanges[0])
    assert [e.id for e in page] == [r["id"] for r in raw]
    for entry, item in zip(page, raw):
        assert_kept(entry, item)
    keys = [e.key for e in page]
    assert keys[0] == "TRIGGER" and {"RESOLVE", "UNRESOLVE", "ASSIGN", "SHARE"} <= set(keys)
    by_member = [e for e in page if e.member is not None]
    assert by_member and by_member[0].member.access_level == "manager"


@responses.activate
def test_incident_members(saas):
    exchanges = cassette("list_incident_members.yaml")
    register(exchanges, strict_query=False)
    incident = next(saas.incidents(per_page=1).pages())[0]
    page = next(saas.incident_members(incident.id, per_page=20).pages())
    raw = body(exchanges[1])
    assert [m.member_id for m in page] == [r["member_id"] for r in raw]
    for member, item in zip(page, raw):
        assert_kept(member, item)
    assert {m.incident_permission for m in page} >= {"full_access", "can_edit"}


@responses.activate
def test_api_tokens(saas):
    exchanges = cassette("list_api_tokens.yaml")
    register(exchanges, strict_query=False)
    page = next(saas.api_tokens(per_page=20).pages())
    raw = body(exchanges[0])
    assert [t.id for t in page] == [r["id"] for r in raw]
    for token, item in zip(page, raw):
        assert_kept(token, item)
    assert {t.status for t in page} >= {"active", "revoked"}


@responses.activate
def test_list_incidents_basic(saas):
    exchanges = cassette("list_incidents_basic.yaml")
    register(exchanges)
    page = next(saas.incidents(per_page=5).pages())
    raw = body(exchanges[0])
    assert [i.id for i in page] == [r["id"] for r in raw]
    for incident, item in zip(page, raw):
        assert_kept(incident, item)
        assert isinstance(incident, Incident)


@responses.activate
def test_list_incidents_followed_through_three_pages(saas):
    exchanges = cassette("list_incidents_get_all.yaml")
    register(exchanges)
    pages = list(islice(saas.incidents(per_page=5).pages(), len(exchanges)))
    assert len(responses.calls) == 3
    for page, exchange in zip(pages, exchanges):
        raw = body(exchange)
        assert [i.id for i in page] == [r["id"] for r in raw]
        for incident, item in zip(page, raw):
            assert_kept(incident, item)
    # The calls went exactly where each page's Link pointed, no parameter added twice.
    for call, exchange in zip(responses.calls, exchanges):
        assert dict(parse_qsl(urlsplit(call.request.url).query)) == dict(
            parse_qsl(urlsplit(exchange["request"]["uri"]).query)
        )
    statuses = {i.status for page in pages for i in page}
    assert {"RESOLVED", "IGNORED", "TRIGGERED"} <= statuses


@responses.activate
def test_get_incident_with_occurrences(saas):
    exchanges = cassette("get_incident.yaml")
    # The recording asked without with_occurrences (server default 20); we always send it.
    register(exchanges, strict_query=False)
    first = next(saas.incidents(per_page=1).pages())[0]
    incident = saas.incident(first.id, with_occurrences=20)
    raw = body(exchanges[1])
    assert_kept(incident, raw)
    assert incident.occurrences and all(isinstance(o, Occurrence) for o in incident.occurrences)
    assert incident.occurrences[0].author_info == raw["occurrences"][0]["author_info"]
    assert not incident.is_open


@responses.activate
def test_list_members(saas):
    exchanges = cassette("list_members.yaml")
    register(exchanges)
    page = next(saas.members(per_page=5).pages())
    for member, item in zip(page, body(exchanges[0]), strict=True):
        assert isinstance(member, Member)
        assert_kept(member, item)


@responses.activate
def test_list_occurrences_with_sources(saas):
    exchanges = cassette("list_occurrences_basic.yaml")
    register(exchanges)
    page = next(saas.occurrences(per_page=5).pages())
    for occurrence, item in zip(page, body(exchanges[0]), strict=True):
        assert_kept(occurrence, item)
        assert occurrence.source is not None and occurrence.source.id == item["source"]["id"]


@responses.activate
def test_audit_logs(saas):
    exchanges = cassette("get_audit_logs.yaml")
    register(exchanges)
    page = next(saas.audit_logs(per_page=10).pages())
    for log, item in zip(page, body(exchanges[0]), strict=True):
        assert isinstance(log, AuditLog)
        assert_kept(log, item)


@responses.activate
def test_incident_notes_empty_link_ends(saas):
    exchanges = cassette("list_incident_notes.yaml")
    # The recording asked for notes without per_page; we always send it.
    register(exchanges, strict_query=False)
    incident = next(saas.incidents(per_page=1).pages())[0]
    # The notes answer has an empty Link header: the iterator must stop after it.
    assert list(saas.notes(incident.id)) == []
    assert len(responses.calls) == 2


@responses.activate
def test_token_info(saas):
    exchanges = cassette("get_current_token_info.yaml")
    register(exchanges)
    token = saas.token_info()
    assert isinstance(token, Token)
    assert_kept(token, body(exchanges[0]))
    assert missing_scopes(token.scopes, ["incidents:write", "audit_logs:read"]) == []


@responses.activate
def test_create_and_update_note(saas):
    exchanges = cassette("create_and_update_incident_note.yaml")
    register(exchanges)
    created_raw, updated_raw = body(exchanges[0]), body(exchanges[1])
    created = saas.add_note(created_raw["incident_id"], created_raw["comment"])
    assert isinstance(created, Note)
    assert_kept(created, created_raw)
    updated = saas.update_note(created.incident_id, created.id, updated_raw["comment"])
    assert_kept(updated, updated_raw)
    assert updated.updated_at is not None and created.updated_at is None
