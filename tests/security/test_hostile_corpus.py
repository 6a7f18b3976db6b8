"""Hostile input corpus (issue 8, Security): answers, addresses, paths and names crafted to
break a parser, widen a search, smuggle an option or escape a directory.

Each case ends in a clear, typed error or a safe verdict for that one input, never a crash, a
hang, a widened LDAP search, a git option or a file outside the repository; and the rest of
the run is unaffected. Four levels: the API client (with `responses`) and the pure decide
functions here, the directory and git adapters against a real slapd and real repositories
(test_hostile_adapters.py), and a playbook end to end on a sandbox holding hostile incidents
(test_hostile_e2e.py).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import responses

from clients.gitguardian import (
    AuthenticationError,
    BadRequest,
    GitGuardianError,
    InvalidResponse,
    ServerError,
)
from clients.models import Incident
from tests.security.conftest import BASE, CONTROL, KEY

INCIDENTS = f"{BASE}/v1/incidents/secrets"


def incident_json(incident_id: int = 1, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": incident_id,
        "detector": {"name": "generic_password"},
        "date": "2026-01-02T03:04:05.123456Z",
        "status": "TRIGGERED",
        "severity": "high",
        "validity": "valid",
        "tags": [],
    }
    data.update(overrides)
    return data


def without(field: str) -> dict[str, Any]:
    data = incident_json()
    del data[field]
    return data


# --------------------------------------------------------------------------- client level

@dataclass(frozen=True)
class Answer:
    """One hostile answer to GET /v1/incidents/secrets and what the client must make of it."""

    body: bytes | str | Any
    error: type[GitGuardianError] | None = None  # expected exception, None: parses
    message: str = ""  # expected in the exception text
    check: Callable[[list[Incident]], None] | None = None  # for answers that parse
    status: int = 200
    content_type: str = "application/json"


def raw(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def kept(field: str, value: Any) -> Callable[[list[Incident]], None]:
    def check(page: list[Incident]) -> None:
        assert getattr(page[0], field) == value

    return check


def _extra_kept(page: list[Incident]) -> None:
    assert page[0].model_extra["brand_new_field"] == {"nested": [1, 2]}
    assert page[0].id == 1


def _unknown_status(page: list[Incident]) -> None:
    assert page[0].status == "QUARANTINED" and not page[0].is_open


def _naive_utc(page: list[Incident]) -> None:
    assert page[0].date == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _share_hidden(page: list[Incident]) -> None:
    assert page[0].is_shared
    assert "share-secret-url" not in repr(page[0])
    assert "share-secret-url" not in page[0].model_dump_json()


def _huge(page: list[Incident]) -> None:
    assert len(page) == 10_000 and page[-1].id == 10_000


def _hostile_text(page: list[Incident]) -> None:
    assert page[0].assignee_email == "<script>alert(1)</script>\x1b[2J@corp.example"
    assert page[0].incident_name == "'; DROP TABLE incidents; --\u202e"


CLIENT_CASES: dict[str, Answer] = {
    "malformed-json": Answer(raw('[{"id": 1,'), InvalidResponse, "not JSON"),
    "truncated-body": Answer(raw(json.dumps([incident_json()])[:-7]), InvalidResponse, "not JSON"),
    "empty-body": Answer(b"", InvalidResponse, "(empty body)"),
    "html-login-page": Answer(raw("<html><body><h1>Sign in</h1></body></html>"), InvalidResponse,
                              "not JSON", content_type="text/html"),
    "html-502-page": Answer(raw("<html><body>502 Bad Gateway</body></html>"), ServerError,
                            "502 Bad Gateway", status=502, content_type="text/html"),
    "html-200-echoing-the-key": Answer(raw(f"<pre>Authorization: Token {KEY}</pre>"),
                                       InvalidResponse, "[REDACTED]", content_type="text/html"),
    "non-utf8-bytes": Answer(b"\xff\xfe\x00\x9c garbage", InvalidResponse, "not JSON"),
    "nesting-bomb": Answer(b"[" * 100_000 + b"]" * 100_000, InvalidResponse, "not JSON"),
    "object-not-list": Answer({"results": [incident_json()]}, InvalidResponse,
                              "expected a JSON list, got dict"),
    "null-body": Answer(None, InvalidResponse, "expected a JSON list, got NoneType"),
    "string-body": Answer("incidents", InvalidResponse, "expected a JSON list, got str"),
    "list-of-numbers": Answer([1, 2], InvalidResponse, "not a valid Incident"),
    "list-of-lists": Answer([[incident_json()]], InvalidResponse, "not a valid Incident"),
    "id-numeric-string": Answer([incident_json(id="12")], check=kept("id", 12)),
    "id-word": Answer([incident_json(id="twelve")], InvalidResponse, "id"),
    "id-float": Answer([incident_json(id=1.5)], InvalidResponse, "id"),
    "id-null": Answer([incident_json(id=None)], InvalidResponse, "id"),
    "id-nan": Answer(raw('[{"id": NaN, "detector": {"name": "x"}, "date": "2026-01-01T00:00:00Z",'
                         ' "status": "TRIGGERED"}]'), InvalidResponse, "id"),
    "tags-as-string": Answer([incident_json(tags="PUBLIC")], InvalidResponse, "tags"),
    "tags-of-numbers": Answer([incident_json(tags=[1, 2])], InvalidResponse, "tags"),
    "missing-id": Answer([without("id")], InvalidResponse, "id: Field required"),
    "missing-detector": Answer([without("detector")], InvalidResponse, "detector: Field required"),
    "missing-date": Answer([without("date")], InvalidResponse, "date: Field required"),
    "missing-status": Answer([without("status")], InvalidResponse, "status: Field required"),
    "detector-as-string": Answer([incident_json(detector="aws")], InvalidResponse, "detector"),
    "date-garbage": Answer([incident_json(date="yesterday")], InvalidResponse, "date"),
    "date-naive": Answer([incident_json(date="2026-01-02T03:04:05")], check=_naive_utc),
    "unknown-fields-kept": Answer([incident_json(brand_new_field={"nested": [1, 2]})],
                                  check=_extra_kept),
    "unknown-status": Answer([incident_json(status="QUARANTINED")], check=_unknown_status),
    "unknown-severity": Answer([incident_json(severity="apocalyptic")],
                               check=kept("severity", "apocalyptic")),
    "unknown-validity": Answer([incident_json(validity="maybe")], check=kept("validity", "maybe")),
    "unknown-tag": Answer([incident_json(tags=["TAG_FROM_THE_FUTURE"])],
                          check=kept("tags", ["TAG_FROM_THE_FUTURE"])),
    "hostile-text-kept-raw": Answer(
        [incident_json(assignee_email="<script>alert(1)</script>\x1b[2J@corp.example",
                       incident_name="'; DROP TABLE incidents; --\u202e")],
        check=_hostile_text),
    "share-url-hidden": Answer([incident_json(share_url="https://share.example/share-secret-url")],
                               check=_share_hidden),
    "share-url-wrong-type": Answer([incident_json(share_url={"url": "share-secret-url"})],
                                   InvalidResponse, "share_url"),
    "huge-page-10k": Answer([incident_json(i) for i in range(1, 10_001)], check=_huge),
}


@pytest.mark.parametrize("name", sorted(CLIENT_CASES))
@responses.activate
def test_client_answer(name, make_client):
    case = CLIENT_CASES[name]
    body = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    responses.add(responses.GET, INCIDENTS, body=body, status=case.status,
                  content_type=case.content_type)
    client = make_client()
    if case.error is None:
        page = next(client.incidents().pages())
        case.check(page)
        return
    with pytest.raises(case.error) as caught:
        list(client.incidents())
    text = str(caught.value)
    assert type(caught.value) is case.error
    assert case.message in text
    assert "GET /v1/incidents/secrets" in text  # names where it happened
    assert KEY[:8] not in text and "share-secret-url" not in text
    assert len(text) < 400 and not CONTROL.search(text)  # short and printable


ERROR_BODIES: dict[str, tuple[int, bytes, type[GitGuardianError], str]] = {
    "401-echoing-the-key": (401, raw(json.dumps({"detail": f"Invalid API key {KEY}"})),
                            AuthenticationError, "[REDACTED]"),
    "500-html-echoing-the-key": (500, raw(f"<pre>Authorization: Token {KEY}</pre>"),
                                 ServerError, "[REDACTED]"),
    "401-key-across-the-cut": (401, raw(json.dumps({"detail": "y" * 190 + KEY})),
                               AuthenticationError, "[REDACTED]"),
    "400-megabyte-detail": (400, raw(json.dumps({"detail": "x" * 1_000_000})), BadRequest, "xxx"),
    "400-terminal-escapes": (400, raw(json.dumps({"detail": "bad\x1b[31m\r\nInjected: line"})),
                             BadRequest, "Injected: line"),
    "422-detail-is-a-list": (422, raw(json.dumps({"detail": ["a", {"b": 1}]})), BadRequest,
                             "['a', {'b': 1}]"),
}


@pytest.mark.parametrize("name", sorted(ERROR_BODIES))
@responses.activate
def test_client_error_body(name, make_client):
    status, body, error, expected = ERROR_BODIES[name]
    responses.add(responses.GET, INCIDENTS, body=body, status=status)
    with pytest.raises(error) as caught:
        list(make_client().incidents())
    text = str(caught.value)
    assert expected in text
    assert KEY[:8] not in text and KEY[:8] not in repr(caught.value)
    assert len(text) < 400 and not CONTROL.search(text)


NEXT_LINKS = {
    "other-host": "https://evil.example/v1/incidents/secrets?cursor=2",
    "other-port": "https://api.gg.test:8443/v1/incidents/secrets?cursor=2",
    "plain-http": "http://api.gg.test/v1/incidents/secrets?cursor=2",
    "userinfo-at-host": "https://api.gg.test@evil.example/v1/incidents/secrets?cursor=2",
    "protocol-relative": "//evil.example/v1/incidents/secrets?cursor=2",
}


@pytest.mark.parametrize("name", sorted(NEXT_LINKS))
@responses.activate
def test_next_link_never_takes_the_key_elsewhere(name, make_client):
    link = NEXT_LINKS[name]
    responses.add(responses.GET, INCIDENTS, json=[incident_json(1)],
                  headers={"Link": f'<{link}>; rel="next"'},
                  match=[responses.matchers.query_param_matcher({"per_page": "100"})])
    responses.add(responses.GET, INCIDENTS, json=[incident_json(2)],
                  match=[responses.matchers.query_param_matcher({"cursor": "2"})])
    ids = [i.id for i in make_client().incidents()]
    assert ids == [1, 2]
    for call in responses.calls:
        assert call.request.url.startswith(f"{BASE}/v1/"), call.request.url


@responses.activate
def test_next_link_that_loops_ends_with_a_clear_error(make_client):
    # A server (or proxy) answering the same next link forever must not hang the run.
    link = f"{INCIDENTS}?cursor=same"
    responses.add(responses.GET, INCIDENTS, json=[incident_json(1)],
                  headers={"Link": f'<{link}>; rel="next"'})
    with pytest.raises(InvalidResponse, match="pagination"):
        list(make_client().incidents())
    assert len(responses.calls) <= 3


# --------------------------------------------------------------------------- decide level

def _no_control(text: str) -> None:
    assert not re.search(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]", text), repr(text)


# (file path of the one occurrence, expected verdict: "ignore" or the skip reason)
HOSTILE_PATHS: dict[str, tuple[str | None, str]] = {
    "dotdot-out-of-tests": ("tests/../config/prod.py", "production_path"),
    "dotdot-before-tests": ("../../etc/tests/passwd", "production_path"),
    "backslash-dotdot": ("tests\\..\\config\\prod.py", "production_path"),
    "absolute-etc": ("/etc/passwd", "production_path"),
    "option-like": ("--upload-pack=touch /tmp/pwned", "production_path"),
    "option-like-inside-tests": ("tests/--upload-pack=x.py", "ignore"),
    "script-tag-in-tests": ("tests/<script>alert(1)</script>.py", "ignore"),
    "control-chars-in-tests": ("tests/a\x1b[31mred\x00\r\n.py", "ignore"),
    "rtl-override-in-tests": ("tests/\u202eyp.terces", "ignore"),
    "fullwidth-tests": ("\uff54\uff45\uff53\uff54\uff53/x.py", "production_path"),
    "cyrillic-tests": ("t\u0435sts/x.py", "production_path"),
    "glob-chars-as-path": ("**/tests/**", "ignore"),  # a file named ** in a tests dir
    "only-slashes": ("///", "production_path"),
    "empty-path": ("", "null_path"),
    "very-long-path-in-tests": ("a/" * 5000 + "tests/x.py", "ignore"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PATHS))
def test_test_credential_verdict_on_hostile_path(name):
    from tasks.decide.auto_ignore import decide_auto_ignore, render_note
    from tests.decide.factories import incident, occurrence

    path, verdict = HOSTILE_PATHS[name]
    hostile = incident(1, validity="invalid")
    clean = incident(2, validity="invalid")
    plan = decide_auto_ignore(
        [hostile, clean],
        {1: [occurrence(10, 1, filepath=path)],
         2: [occurrence(20, 2, filepath="tests/conftest.py")]},
    )
    got = {d.incident_id: "ignore" for d in plan.decisions}
    got.update({s.incident_id: s.reason for s in plan.skips})
    assert got == {1: verdict, 2: "ignore"}  # the clean incident is decided as without it
    for decision in plan.decisions:
        _no_control(decision.evidence)
        _no_control(render_note(decision))
        assert len(render_note(decision)) < 1000
    for skip in plan.skips:
        _no_control(skip.evidence)


HOSTILE_AUTHORS: dict[str, str] = {
    "ldap-wildcard": "*",
    "ldap-filter-injection": "*)(mail=*",
    "ldap-or-injection": "dev.one@corp.example)(|(mail=*",
    "nul-after-address": "dev.one@corp.example\x00",
    "nul-inside-address": "dev\x00.one@corp.example",
    "zero-width-space": "dev.one@corp.example\u200b",
    "cyrillic-homoglyph": "dev.\u043ene@corp.example",
    "two-addresses": "dev.one@corp.example, dev.two@corp.example",
    "angle-brackets": "Dev One <dev.one@corp.example>",
    "script-tag": "<script>alert(1)</script>@corp.example",
    "newline-header": "x@corp.example\r\nBcc: dev.one@corp.example",
    "very-long": "a" * 5000 + "@corp.example",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_AUTHORS))
def test_triage_never_assigns_a_hostile_author(name):
    from tasks.decide.commit_author_triage import (
        CommitAuthorTriagePolicy,
        decide_commit_author_triage,
    )
    from tests.decide.factories import incident, member, occurrence

    author = HOSTILE_AUTHORS[name]
    members = [member(1, "dev.one@corp.example"), member(2, "dev.two@corp.example")]
    plan = decide_commit_author_triage(
        [incident(1), incident(2)],
        {1: [occurrence(10, 1, author=author, author_name="<b>Dev</b>\x1b[0m")],
         2: [occurrence(20, 2, author="DEV.TWO@corp.example ")]},
        members, {}, {}, CommitAuthorTriagePolicy(share_with_non_member_author=True),
    )
    assigned = {d.incident_id: d.arguments["email"] for d in plan.decisions
                if d.action.value == "assign"}
    assert assigned == {2: "dev.two@corp.example"}  # the clean incident is still assigned
    for decision in plan.decisions:
        _no_control(decision.evidence)
        assert len(decision.evidence) < 1000
    for skip in plan.skips:
        _no_control(skip.evidence)


@pytest.mark.parametrize("name", ["ldap-filter-injection", "nul-after-address", "script-tag"])
def test_departed_leaves_a_hostile_assignee_alone(name):
    from clients.directory import Lookup, Status
    from tasks.decide.departed_developers import (
        DepartedDevelopersPolicy,
        decide_departed_developers,
    )
    from tests.decide import departed_factories as f

    hostile = HOSTILE_AUTHORS[name]
    plan = decide_departed_developers(
        [f.Incident(1, assignee_email=hostile), f.Incident(2, assignee_email=f.email("gone"))],
        directory={hostile: Lookup(Status.UNKNOWN, detail="not a plausible e-mail address"),
                   f.email("gone"): Lookup(Status.DEPARTED,
                                           f.person("gone", markers=("leavers_ou",)))},
        managers={}, members=[f.Member(7, f.email("lead"))], occurrences_by_incident={},
        codeowners={}, recent_committers={},
        policy=DepartedDevelopersPolicy(fallback_email=f.email("lead")),
    )
    assert [d.incident_id for d in plan.decisions] == [2]


MARKDOWN = {
    "script": ("<script>alert(1)</script>", "\\<script\\>alert(1)\\</script\\>"),
    "link": ("[click](https://evil.example)", "\\[click\\](https://evil.example)"),
    "table-break": ("a | b\n|---|", "a \\| b \\|---\\|"),
    "heading-newline": ("ok\n# Owned", "ok \\# Owned"),
    "backticks": ("`rm -rf /`", "\\`rm -rf /\\`"),
    "control": ("bad\x1b[31mred\u202e\r\n", "bad\\x1b\\[31mred\\u202e"),
}


@pytest.mark.parametrize("name", sorted(MARKDOWN))
def test_markdown_escaping_of_api_text(name):
    from tasks.playbook import _md

    text, escaped = MARKDOWN[name]
    assert _md(text) == escaped
    assert "\n" not in _md(text)

