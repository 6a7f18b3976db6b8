"""Every client method sends the exact method, path, query and body, and parses the answer."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import responses
from responses import matchers

from clients.gitguardian import USER_AGENT
from clients.models import (
    AuditLog,
    Incident,
    Member,
    Note,
    Occurrence,
    Share,
    Source,
    Token,
    missing_scopes,
)
from tests.client.conftest import BASE, KEY, incident_json, note_json

INCIDENTS = f"{BASE}/v1/incidents/secrets"


def q(**params: str):
    return matchers.query_param_matcher(params)


@responses.activate
def test_every_request_carries_auth_user_agent_and_timeout(make_client):
    client = make_client(timeout=7.5)
    responses.get(
        f"{BASE}/v1/health",
        json={"detail": "Valid API key."},
        match=[
            matchers.header_matcher({"Authorization": f"Token {KEY}", "User-Agent": USER_AGENT}),
            matchers.request_kwargs_matcher({"timeout": 7.5}),
        ],
    )
    assert client.health() == "Valid API key."
    assert client.request_counts == {"GET /v1/health": 1}
    assert client.requests_total == 1


@responses.activate
def test_token_info(client):
    responses.get(
        f"{BASE}/v1/api_tokens/self",
        json={
            "id": "5ddaad0c-5a0c-4674-beb5-1cd198d13360",
            "name": "bot",
            "type": "personal_access_token",
            "status": "active",
            "scopes": ["incidents:share", "members:read"],
            "member_id": 12,
            "created_at": "2026-01-01T00:00:00Z",
            "last_used_at": None,
        },
    )
    token = client.token_info()
    assert isinstance(token, Token)
    assert token.member_id == 12
    assert missing_scopes(token.scopes, ["incidents:write", "members:read", "audit_logs:read"]) == [
        "audit_logs:read"
    ]


@responses.activate
def test_incident_sends_with_occurrences(client):
    responses.get(
        f"{INCIDENTS}/42",
        match=[q(with_occurrences="20")],
        json=incident_json(
            42,
            occurrences=[
                {
                    "id": 5,
                    "incident_id": 42,
                    "date": "2026-01-02T03:04:05Z",
                    "filepath": None,
                    "sha": None,
                    "author_info": "a.b@corp.example",
                    "author_name": "A B",
                    "kind": "realtime",
                    "presence": "present",
                }
            ],
        ),
    )
    incident = client.incident(42, with_occurrences=20)
    assert incident.id == 42 and incident.is_open
    assert incident.occurrences[0].author_info == "a.b@corp.example"
    assert incident.occurrences[0].filepath is None
    assert client.request_counts == {"GET /v1/incidents/secrets/{id}": 1}


@responses.activate
def test_incident_default_asks_no_occurrences(client):
    responses.get(f"{INCIDENTS}/42", match=[q(with_occurrences="0")], json=incident_json(42))
    assert client.incident(42).occurrences is None


@responses.activate
def test_member(client):
    responses.get(
        f"{BASE}/v1/members/7",
        json={"id": 7, "email": "x.y@corp.example", "access_level": "member", "active": True,
              "last_login": None, "created_at": "2025-05-05T05:05:05Z"},
    )
    member = client.member(7)
    assert isinstance(member, Member) and member.email == "x.y@corp.example"
    assert member.last_login is None


@responses.activate
def test_incident_filters_are_sent_validated_and_converted(client):
    after = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    responses.get(
        INCIDENTS,
        match=[
            q(
                per_page="50",
                status="TRIGGERED,ASSIGNED",
                severity="critical",
                assignee_email="a.b@corp.example",
                date_after="2026-01-01T00:00:00.000000Z",
                feedback="false",
                risk_score_min="10",
                tags="NONE",
                ordering="-date",
            )
        ],
        json=[incident_json(1), incident_json(2)],
    )
    found = list(
        client.incidents(
            per_page=50,
            status=["TRIGGERED", "ASSIGNED"],
            severity="critical",
            assignee_email="a.b@corp.example",
            date_after=after,
            feedback=False,
            risk_score_min=10,
            tags=["NONE"],
            ordering="-date",
            validity=None,  # None means "no filter"
        )
    )
    assert [i.id for i in found] == [1, 2]


@responses.activate
def test_source_incidents(client):
    responses.get(
        f"{BASE}/v1/sources/33/incidents/secrets",
        match=[q(per_page="100", status="TRIGGERED")],
        json=[incident_json(3)],
    )
    assert [i.id for i in client.source_incidents(33, status="TRIGGERED")] == [3]
    assert client.request_counts == {"GET /v1/sources/{id}/incidents/secrets": 1}


@responses.activate
def test_occurrences(client):
    responses.get(
        f"{BASE}/v1/occurrences/secrets",
        match=[q(per_page="100", incident_id="4", presence="present", filepath="src/")],
        json=[{"id": 8, "incident_id": 4, "date": "2026-01-02T03:04:05Z",
               "source": {"id": 2, "type": "github", "full_name": "acme/app"}}],
    )
    (occurrence,) = client.occurrences(incident_id=4, presence="present", filepath="src/")
    assert isinstance(occurrence, Occurrence)
    assert occurrence.source.full_name == "acme/app"


@responses.activate
def test_members_and_pages(client):
    responses.get(
        f"{BASE}/v1/members",
        match=[q(per_page="2", active="true", access_level="manager")],
        json=[{"id": 1, "email": "a@corp.example"}, {"id": 2, "email": "b@corp.example"}],
    )
    pages = list(client.members(per_page=2, active=True, access_level="manager").pages())
    assert [[m.id for m in page] for page in pages] == [[1, 2]]


@responses.activate
def test_audit_logs(client):
    responses.get(
        f"{BASE}/v1/audit_logs",
        match=[q(per_page="100", member_id="5", date_before="2026-02-01")],
        json=[{"id": 1, "date": "2026-01-02T03:04:05Z", "target_ids": ["6"],
               "action_type": "UPDATE", "api_token_id": None}],
    )
    (log,) = client.audit_logs(member_id=5, date_before="2026-02-01")
    assert isinstance(log, AuditLog) and log.target_ids == ["6"]


@responses.activate
def test_sources(client):
    responses.get(
        f"{BASE}/v1/sources",
        match=[q(per_page="100", monitored="true", type="github")],
        json=[{"id": 3, "type": "github", "full_name": "acme/app", "monitored": True}],
    )
    (source,) = client.sources(monitored=True, type="github")
    assert isinstance(source, Source) and source.full_name == "acme/app"


@responses.activate
def test_notes(client):
    responses.get(
        f"{INCIDENTS}/4/notes",
        match=[q(per_page="100", search="decision-abc")],
        json=[note_json(1), note_json(2)],
    )
    assert [n.id for n in client.notes(4, search="decision-abc")] == [1, 2]
    assert client.request_counts == {"GET /v1/incidents/secrets/{id}/notes": 1}


@responses.activate
@pytest.mark.parametrize(
    "kwargs, query, body",
    [
        ({"email": "a.b@corp.example"}, {"send_email": "true"}, {"email": "a.b@corp.example"}),
        ({"member_id": 12, "send_email": False}, {"send_email": "false"}, {"member_id": 12}),
    ],
)
def test_assign(client, kwargs, query, body):
    responses.post(
        f"{INCIDENTS}/5/assign",
        match=[matchers.query_param_matcher(query), matchers.json_params_matcher(body)],
        json=incident_json(5, status="ASSIGNED", assignee_email="a.b@corp.example"),
    )
    incident = client.assign(5, **kwargs)
    assert isinstance(incident, Incident) and incident.status == "ASSIGNED"
    assert client.request_counts == {"POST /v1/incidents/secrets/{id}/assign": 1}


def test_assign_needs_exactly_one_target(client):
    with pytest.raises(ValueError):
        client.assign(5)
    with pytest.raises(ValueError):
        client.assign(5, email="a@corp.example", member_id=3)


@responses.activate
def test_unassign_reopen_and_unshare_send_no_body(client):
    for action in ("unassign", "reopen"):
        responses.post(f"{INCIDENTS}/5/{action}", json=incident_json(5))
    responses.post(f"{INCIDENTS}/5/unshare", status=204)
    assert client.unassign(5).status == "TRIGGERED"
    assert client.reopen(5).id == 5
    assert client.unshare(5) is None
    assert all(call.request.body is None for call in responses.calls)


@responses.activate
def test_resolve(client):
    responses.post(
        f"{INCIDENTS}/5/resolve",
        match=[matchers.json_params_matcher({"secret_revoked": True})],
        json=incident_json(5, status="RESOLVED", secret_revoked=True),
    )
    assert client.resolve(5, secret_revoked=True).status == "RESOLVED"


@responses.activate
def test_ignore(client):
    responses.post(
        f"{INCIDENTS}/5/ignore",
        match=[matchers.json_params_matcher({"ignore_reason": "test_credential"})],
        json=incident_json(5, status="IGNORED", ignore_reason="test_credential"),
    )
    assert client.ignore(5, reason="test_credential").ignore_reason == "test_credential"
    with pytest.raises(ValueError):
        client.ignore(5, reason="because")
    assert len(responses.calls) == 1


@responses.activate
def test_share(client):
    fake_url = "https://dashboard.gg.test/share/incidents/fake-share-" + "x" * 8
    responses.post(
        f"{INCIDENTS}/5/share",
        match=[matchers.json_params_matcher(
            {"auto_healing": True, "feedback_collection": False, "lifespan": 48}
        )],
        json={"share_url": fake_url, "incident_id": 5, "feedback_collection": False,
              "auto_healing": True, "token": "fake-share-token", "expire_at": None,
              "revoked_at": None},
    )
    share = client.share(5, auto_healing=True, feedback_collection=False, lifespan_hours=48)
    assert isinstance(share, Share)
    assert share.share_url.get_secret_value() == fake_url
    assert fake_url not in repr(share) and "fake-share-token" not in repr(share)
    assert fake_url not in str(share.model_dump())


@responses.activate
def test_share_defaults(client):
    responses.post(
        f"{INCIDENTS}/5/share",
        match=[matchers.json_params_matcher(
            {"auto_healing": False, "feedback_collection": True, "lifespan": 0}
        )],
        json={"share_url": "https://dashboard.gg.test/share/fake", "incident_id": 5},
    )
    assert client.share(5).incident_id == 5


@responses.activate
def test_add_update_delete_note(client):
    responses.post(
        f"{INCIDENTS}/5/notes",
        match=[matchers.json_params_matcher({"comment": "first"})],
        status=201,
        json=note_json(9, "first"),
    )
    responses.patch(
        f"{INCIDENTS}/5/notes/9",
        match=[matchers.json_params_matcher({"comment": "second"})],
        json=note_json(9, "second", updated_at="2026-01-03T00:00:00Z"),
    )
    responses.delete(f"{INCIDENTS}/5/notes/9", status=204)
    assert client.add_note(5, "first").comment == "first"
    updated = client.update_note(5, 9, "second")
    assert isinstance(updated, Note) and updated.updated_at.tzinfo is not None
    assert client.delete_note(5, 9) is None
    assert client.request_counts == {
        "POST /v1/incidents/secrets/{id}/notes": 1,
        "PATCH /v1/incidents/secrets/{id}/notes/{id}": 1,
        "DELETE /v1/incidents/secrets/{id}/notes/{id}": 1,
    }


def test_note_comment_bounds(client):
    with pytest.raises(ValueError):
        client.add_note(5, "")
    with pytest.raises(ValueError):
        client.update_note(5, 9, "x" * 10_001)


@pytest.mark.parametrize("bad_id", [0, -1, "5/../../members", True, None])
def test_ids_in_paths_must_be_positive_integers(client, bad_id):
    with pytest.raises(ValueError):
        client.incident(bad_id)


@responses.activate
def test_pagination_follows_link_without_re_adding_params(client):
    page2 = f"{INCIDENTS}?cursor=cD0y&per_page=2&status=TRIGGERED"
    responses.get(
        INCIDENTS,
        match=[q(per_page="2", status="TRIGGERED")],
        json=[incident_json(1), incident_json(2)],
        headers={"Link": f'<{page2}>; rel="next"'},
    )
    responses.get(
        INCIDENTS,
        match=[q(cursor="cD0y", per_page="2", status="TRIGGERED")],
        json=[incident_json(3)],
        headers={"Link": ""},
    )
    pages = client.incidents(per_page=2, status="TRIGGERED").pages()
    assert [[i.id for i in p] for p in pages] == [[1, 2], [3]]
    assert responses.calls[1].request.url == page2
    assert client.request_counts == {"GET /v1/incidents/secrets": 2}


@responses.activate
def test_pagination_is_lazy(client):
    responses.get(
        INCIDENTS,
        json=[incident_json(1)],
        headers={"Link": f'<{INCIDENTS}?cursor=n&per_page=100>; rel="next"'},
    )
    first = next(iter(client.incidents()))
    assert first.id == 1 and len(responses.calls) == 1


@responses.activate
def test_next_link_to_another_host_stays_on_our_base(client):
    # A Link must never carry the key to another host: only its path and query are used.
    responses.get(
        INCIDENTS,
        match=[q(per_page="100")],
        json=[incident_json(1)],
        headers={"Link": '<https://elsewhere.example/v1/incidents/secrets?cursor=z>; rel="next"'},
    )
    responses.get(INCIDENTS, match=[q(cursor="z")], json=[incident_json(2)])
    assert [i.id for i in client.incidents()] == [1, 2]
    assert responses.calls[1].request.url.startswith(BASE)


@responses.activate
def test_base_url_with_path_prefix(make_client):
    from clients.gitguardian import GitGuardianClient
    from clients.retry import RetryPolicy

    client = GitGuardianClient(
        "https://gg.corp.test/exposed/", KEY, requests_per_minute=None,
        retry=RetryPolicy(sleep=lambda s: None),
    )
    url = "https://gg.corp.test/exposed/v1/members"
    responses.get(url, match=[q(per_page="100")], json=[{"id": 1, "email": "a@corp.example"}],
                  headers={"Link": f'<{url}?cursor=c&per_page=100>; rel="next"'})
    responses.get(url, match=[q(cursor="c", per_page="100")], json=[])
    assert [m.id for m in client.members()] == [1]
    assert client.request_counts == {"GET /v1/members": 2}


@pytest.mark.parametrize("lifespan", [-1, 1.5, True, "24"])
def test_share_lifespan_must_be_whole_hours(client, lifespan):
    with pytest.raises(ValueError):
        client.share(5, lifespan_hours=lifespan)
