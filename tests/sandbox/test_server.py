"""The sandbox server over real HTTP with raw `requests`: auth, scopes, lists, filters, errors.

Runs on the hand-built workspace of workspace_builder so expectations are computed from known
data. Writes are in test_server_writes.py.
"""
from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import requests

import sandbox
from tests.sandbox.workspace_builder import build_workspace

INCIDENTS = 60


@pytest.fixture(scope="module")
def box() -> Iterator[sandbox.Sandbox]:
    with sandbox.running(workspace=build_workspace(INCIDENTS)) as running_box:
        yield running_box


def get(box: sandbox.Sandbox, path: str, token: str | None = None, **params: Any):
    headers = {"Authorization": f"Token {token or box.token}"}
    return requests.get(box.url + path, params=params, headers=headers, timeout=10)


def walk(box: sandbox.Sandbox, path: str, token: str | None = None, **params: Any) -> list[dict]:
    """Follow Link rel=next to the end; checks each page's headers on the way."""
    items: list[dict] = []
    response = get(box, path, token, **params)
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        assert isinstance(page, list)
        assert response.headers["x-per-page"] == str(params.get("per_page", 20))
        assert len(page) <= int(response.headers["x-per-page"])
        items.extend(page)
        next_url = response.links.get("next", {}).get("url")
        if not next_url:
            return items
        response = requests.get(next_url, headers={"Authorization": f"Token {token or box.token}"},
                                timeout=10)


def ids(items: list[dict]) -> list[int]:
    return [item["id"] for item in items]


def expected(box: sandbox.Sandbox, keep) -> list[int]:
    return sorted(i["id"] for i in box.workspace.incidents if keep(i))


# ---------------------------------------------------------------- auth and scopes


def test_missing_or_unknown_key_is_401_with_the_exact_body(box):
    for headers in ({}, {"Authorization": "Token not-a-real-key"}, {"Authorization": box.token}):
        response = requests.get(box.url + "/v1/incidents/secrets", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid API key."}


def test_health_and_token_self(box):
    assert get(box, "/v1/health").json() == {"detail": "Valid API key."}
    info = get(box, "/v1/api_tokens/self", box.tokens["read"]).json()
    assert info["scopes"] == ["incidents:read", "members:read"]
    assert info["member_id"] == 1 and info["status"] == "active"
    assert set(info) >= {"id", "name", "workspace_id", "type", "created_at", "last_used_at",
                         "expire_at", "revoked_at", "creator_id"}


@pytest.mark.parametrize(
    "token_name, method, path, allowed",
    [
        ("read", "GET", "/v1/incidents/secrets", True),
        ("read", "GET", "/v1/members", True),
        ("read", "POST", "/v1/incidents/secrets/4/assign", False),
        ("read", "GET", "/v1/audit_logs", False),
        ("read", "GET", "/v1/sources", False),
        ("no_audit", "GET", "/v1/audit_logs", False),
        ("no_audit", "GET", "/v1/teams", True),
        ("writer", "POST", "/v1/incidents/secrets/4/share", False),
        ("writer", "GET", "/v1/occurrences/secrets", True),
    ],
)
def test_scopes_are_enforced_per_endpoint(box, token_name, method, path, allowed):
    response = requests.request(method, box.url + path, json={},
                                headers={"Authorization": f"Token {box.tokens[token_name]}"},
                                timeout=10)
    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert response.json() == {"detail": "Permission denied."}


def test_unknown_ids_and_routes_are_404_with_detail(box):
    for path in ("/v1/incidents/secrets/99999", "/v1/members/999", "/v1/sources/999",
                 "/v1/incidents/secrets/99999/notes", "/v1/sources/999/incidents/secrets",
                 "/v1/no-such-endpoint"):
        response = get(box, path)
        assert response.status_code == 404, path
        assert response.json() == {"detail": "Not found."}
    assert "x-app-version" in get(box, "/v1/incidents/secrets/99999").headers


# ---------------------------------------------------------------- pagination


def test_pagination_walks_every_incident_once_in_id_order(box):
    items = walk(box, "/v1/incidents/secrets", per_page=7)
    assert ids(items) == list(range(1, INCIDENTS + 1))
    assert all(item["occurrences"] is None for item in items)


def test_link_header_is_absolute_sorted_and_has_prev_and_next(box):
    first = get(box, "/v1/incidents/secrets", per_page=5, status="TRIGGERED,ASSIGNED")
    assert "prev" not in first.links
    next_url = first.links["next"]["url"]
    parts = urlsplit(next_url)
    assert f"{parts.scheme}://{parts.netloc}" == box.url
    names = [name for name, _ in parse_qsl(parts.query)]
    assert names == sorted(names) == ["cursor", "per_page", "status"]
    cursor = dict(parse_qsl(parts.query))["cursor"]
    assert base64.b64decode(cursor).decode() == f"p={first.json()[-1]['id']}"
    second = requests.get(next_url, headers={"Authorization": f"Token {box.token}"}, timeout=10)
    prev_cursor = dict(parse_qsl(urlsplit(second.links["prev"]["url"]).query))["cursor"]
    assert base64.b64decode(unquote(prev_cursor)).decode() == f"r=1&p={second.json()[0]['id']}"
    back = requests.get(second.links["prev"]["url"],
                        headers={"Authorization": f"Token {box.token}"}, timeout=10)
    assert ids(back.json()) == ids(first.json())


def test_last_page_has_no_next_link(box):
    response = get(box, "/v1/incidents/secrets", per_page=100)
    assert len(response.json()) == INCIDENTS
    assert "next" not in response.links
    assert "rel=\"next\"" not in response.headers.get("link", "")


@pytest.mark.parametrize("per_page", ["0", "101", "abc", "-3"])
def test_per_page_out_of_range_is_400(box, per_page):
    response = get(box, "/v1/incidents/secrets", per_page=per_page)
    assert response.status_code == 400
    assert "per_page" in response.json()["detail"]


def test_default_per_page_is_20_and_bad_cursor_is_400(box):
    response = get(box, "/v1/incidents/secrets")
    assert len(response.json()) == 20 and response.headers["x-per-page"] == "20"
    assert get(box, "/v1/incidents/secrets", cursor="%%%").status_code == 400


def test_unknown_query_parameters_are_silently_ignored(box):
    everything = ids(get(box, "/v1/incidents/secrets", per_page=100).json())
    misspelt = get(box, "/v1/incidents/secrets", per_page=100, statuz="IGNORED")
    assert misspelt.status_code == 200
    assert ids(misspelt.json()) == everything


# ---------------------------------------------------------------- incident filters


@pytest.mark.parametrize(
    "params, keep",
    [
        ({"status": "IGNORED"}, lambda i: i["status"] == "IGNORED"),
        ({"status": "TRIGGERED,ASSIGNED"}, lambda i: i["status"] in ("TRIGGERED", "ASSIGNED")),
        ({"severity": "critical,high"}, lambda i: i["severity"] in ("critical", "high")),
        ({"validity": "valid"}, lambda i: i["validity"] == "valid"),
        ({"assignee_email": "MAX.Manager@corp.example"},
         lambda i: i["assignee_email"] == "max.manager@corp.example"),
        ({"assignee_id": "3"}, lambda i: i["assignee_id"] == 3),
        ({"tags": "TEST_FILE,SENSITIVE_FILE"},
         lambda i: bool({"TEST_FILE", "SENSITIVE_FILE"} & set(i["tags"]))),
        ({"tags": "NONE"}, lambda i: not i["tags"]),
        ({"exclude_tags": "TEST_FILE"}, lambda i: "TEST_FILE" not in i["tags"]),
        ({"detector_group_name": "github_token"},
         lambda i: i["detector"]["detector_group_name"] == "github_token"),
        ({"risk_score_min": "40", "risk_score_max": "60"}, lambda i: 40 <= i["risk_score"] <= 60),
        ({"feedback": "true"}, lambda i: bool(i["feedback_list"])),
        ({"feedback": "false"}, lambda i: not i["feedback_list"]),
        ({"date_after": "2026-05-15"}, lambda i: i["date"] >= "2026-05-15"),
        ({"date_before": "2026-05-15T00:00:00Z"}, lambda i: i["date"] < "2026-05-15"),
        ({"triggered_at_after": "2026-05-01"}, lambda i: i["triggered_at"] >= "2026-05-01"),
        ({"resolver_id": "1"}, lambda i: i["resolver_id"] == 1),
        ({"ignorer_id": "1", "status": "IGNORED"}, lambda i: i["ignorer_id"] == 1),
    ],
)
def test_incident_filters(box, params, keep):
    want = expected(box, keep)
    assert want, "the builder must give each filter something to find"
    assert ids(walk(box, "/v1/incidents/secrets", per_page=100, **params)) == want


def test_bad_filter_values_are_400(box):
    for params in ({"risk_score_min": "high"}, {"date_after": "yesterday"},
                   {"feedback": "maybe"}, {"assignee_id": "x"}):
        response = get(box, "/v1/incidents/secrets", **params)
        assert response.status_code == 400 and "detail" in response.json()


@pytest.mark.parametrize("ordering", ["date", "-date", "risk_score", "-risk_score",
                                      "resolved_at", "-ignored_at"])
def test_ordering_holds_across_pages(box, ordering):
    items = walk(box, "/v1/incidents/secrets", per_page=8, ordering=ordering)
    assert sorted(ids(items)) == list(range(1, INCIDENTS + 1))
    name = ordering.lstrip("-")
    values = [i[name] for i in items if i[name] is not None]
    assert values == sorted(values, reverse=ordering.startswith("-"))
    if name in ("resolved_at", "ignored_at"):  # nulls after values ascending, before descending
        nulls = [i[name] is None for i in items]
        assert nulls == sorted(nulls, reverse=ordering.startswith("-"))


def test_source_incidents_lists_only_that_sources_incidents(box):
    items = walk(box, "/v1/sources/10/incidents/secrets", per_page=50)
    assert ids(items) == sorted({o["incident_id"] for o in box.workspace.occurrences
                                 if o["source"]["id"] == 10})


# ---------------------------------------------------------------- one incident


def test_get_incident_embeds_occurrences(box):
    assert len(get(box, "/v1/incidents/secrets/3").json()["occurrences"]) == 20
    everything = get(box, "/v1/incidents/secrets/3", with_occurrences=100).json()
    assert len(everything["occurrences"]) == 25
    assert get(box, "/v1/incidents/secrets/3", with_occurrences=0).json()["occurrences"] is None
    assert get(box, "/v1/incidents/secrets/3", with_occurrences=101).status_code == 400


# ---------------------------------------------------------------- occurrences


def occurrence_ids(box, keep) -> list[int]:
    incidents = {i["id"]: i for i in box.workspace.incidents}
    return sorted(o["id"] for o in box.workspace.occurrences
                  if keep(o, incidents[o["incident_id"]]))


@pytest.mark.parametrize(
    "params, keep",
    [
        ({"incident_id": "3"}, lambda o, i: o["incident_id"] == 3),
        ({"incident_id": "3,4"}, lambda o, i: o["incident_id"] in (3, 4)),
        ({"source_id": "11"}, lambda o, i: o["source"]["id"] == 11),
        ({"source_name": "acme/payments-api"}, lambda o, i: o["source"]["id"] == 10),
        ({"source_type": "github"}, lambda o, i: True),
        ({"presence": "removed"}, lambda o, i: o["presence"] == "removed"),
        ({"author_info": "dev1@corp"}, lambda o, i: o["author_info"] == "dev1@corp.example"),
        ({"author_name": "Dev 2"}, lambda o, i: o["author_name"] == "Dev 2"),
        ({"filepath": "tests/"}, lambda o, i: o["filepath"].startswith("tests/")),
        ({"tags": "TEST_FILE"}, lambda o, i: "TEST_FILE" in o["tags"]),
        ({"exclude_tags": "TEST_FILE"}, lambda o, i: "TEST_FILE" not in o["tags"]),
        ({"status": "RESOLVED"}, lambda o, i: i["status"] == "RESOLVED"),
        ({"severity": "low", "validity": "valid"},
         lambda o, i: i["severity"] == "low" and i["validity"] == "valid"),
        ({"date_after": "2026-05-15"}, lambda o, i: o["date"] >= "2026-05-15"),
        ({"sha": f"{1005:040x}"}, lambda o, i: o["id"] == 1005),
    ],
)
def test_occurrence_filters(box, params, keep):
    want = occurrence_ids(box, keep)
    assert want
    assert ids(walk(box, "/v1/occurrences/secrets", per_page=100, **params)) == want


def test_occurrence_short_text_filters_are_400_and_ordering_by_date(box):
    for name in ("author_info", "sha", "filepath"):
        assert get(box, "/v1/occurrences/secrets", **{name: "ab"}).status_code == 400
    items = walk(box, "/v1/occurrences/secrets", per_page=100, ordering="-date")
    dates = [o["date"] for o in items]
    assert dates == sorted(dates, reverse=True) and len(items) == len(box.workspace.occurrences)
    assert all(o["source"]["full_name"] for o in items)


# ---------------------------------------------------------------- members, teams, sources


def test_members_filters(box):
    assert ids(walk(box, "/v1/members", active="false")) == [5]
    assert ids(walk(box, "/v1/members", access_level="manager")) == [2]
    assert ids(walk(box, "/v1/members", search="MIA")) == [3]
    newest_first = ids(walk(box, "/v1/members", ordering="-created_at"))
    assert newest_first == [5, 4, 3, 2, 1]
    assert get(box, "/v1/members/4").json()["access_level"] == "restricted"


def test_teams_and_sources(box):
    teams = get(box, "/v1/teams")
    assert teams.status_code == 200
    assert [(t["name"], t["is_global"]) for t in teams.json()][0] == ("All incidents", True)
    assert len(teams.json()) >= 2  # and one team per access level below manager
    assert ids(walk(box, "/v1/sources")) == [10, 11]
    assert ids(walk(box, "/v1/sources", search="web")) == [11]
    assert get(box, "/v1/sources/10").json()["full_name"] == "acme/payments-api"
