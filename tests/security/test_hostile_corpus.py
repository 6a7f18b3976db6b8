"""Hostile input corpus (issue 8, Security): answers, addresses, paths and names crafted to
break a parser, widen a search, smuggle an option or escape a directory.

Each case ends in a clear, typed error or a safe verdict for that one input, never a crash, a
hang, a widened LDAP search, a git option or a file outside the repository; and the rest of
the run is unaffected. Four levels: the API client (with `responses`), the pure decide
functions, the directory and git adapters against a real slapd and real repositories, and
a playbook end to end on a sandbox holding hostile incidents.
"""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
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
from tests.fixtures.harness import ground_truth, plan_of, run_flow
from tests.security.conftest import BASE, KEY

INCIDENTS = f"{BASE}/v1/incidents/secrets"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


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
    from tests.fixtures.factories import incident, occurrence

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
    from tests.fixtures.factories import incident, member, occurrence

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
    from tests.fixtures import factories as f

    hostile = HOSTILE_AUTHORS[name]
    plan = decide_departed_developers(
        [f.incident(1, status="ASSIGNED", occurrences_count=None, assignee_email=hostile),
         f.incident(2, status="ASSIGNED", occurrences_count=None,
                    assignee_email=f.email("gone"))],
        directory={hostile: Lookup(Status.UNKNOWN, detail="not a plausible e-mail address"),
                   f.email("gone"): Lookup(Status.DEPARTED,
                                           f.person("gone", markers=("leavers_ou",)))},
        managers={}, members=[f.member(7, f.email("lead"))], occurrences_by_incident={},
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


# --------------------------------------------------------------------------- directory adapter

HOSTILE_ADDRESSES: dict[str, str] = {
    "star-local-part": "*@corp.example",
    "star-everything": "*",
    "filter-close-and-or": "*)(|(mail=*)@corp.example",
    "filter-objectclass": "x@corp.example)(objectClass=*",
    "escaped-star-literal": "\\2a@corp.example",
    "nul-then-filter": "x@corp.example\x00)(mail=*",
    "parenthesised-filter": "(mail=*)@corp.example",
    "and-true-filter": "admin)(&)@corp.example",
    "uid-wildcard": "*)(uid=*))(|(uid=*@corp.example",
    "newline-filter": "a@corp.example\n(mail=*)",
    "non-ascii": "\u00fcn\u00efc\u00f8d\u00e9@corp.example",
    "very-long": "b" * 300 + "@corp.example",
    "dn-like": "cn=admin,dc=corp,dc=example",
}


@pytest.fixture(scope="module")
def directory(sandbox_directory):
    from clients.directory import Directory, DirectorySettings

    settings = DirectorySettings(
        url=sandbox_directory.url, bind_dn=sandbox_directory.bind_dn,
        password=sandbox_directory.password, base_dn="dc=corp,dc=example",
        leavers_ou="ou=leavers,dc=corp,dc=example",
    )
    with Directory(settings) as adapter:
        yield adapter


@pytest.fixture(scope="module")
def known_person(sandbox_workspace):
    return next(p for p in sandbox_workspace.people if not p.departed)


@pytest.mark.slapd
@pytest.mark.parametrize("name", sorted(HOSTILE_ADDRESSES))
def test_directory_lookup_of_hostile_address_never_widens(name, directory, known_person):
    from clients.directory import Status

    hostile = HOSTILE_ADDRESSES[name]
    prefix = known_person.email.split("@")[0][:3]
    variants = [hostile, hostile.replace("x@", f"{prefix}*@"), f"{prefix}*@corp.example"]
    directory._by_email.clear()  # every case searches the server, not the cache
    before = directory.entries_read
    answers = directory.lookup([known_person.email, *variants])
    # The honest address is answered as without the hostile ones in its batch...
    assert answers[known_person.email.lower()].status is Status.ACTIVE
    # ...and no hostile one matches anybody: at most the one honest entry came back.
    for variant in variants:
        assert answers[variant.strip().casefold()].status is Status.UNKNOWN, variant
    assert directory.entries_read - before <= 1


@pytest.mark.slapd
@pytest.mark.parametrize("dn", ["*", "uid=*,ou=people,dc=corp,dc=example",
                                "uid=x)(objectClass=*,ou=people,dc=corp,dc=example"])
def test_directory_person_at_hostile_dn_finds_nobody(dn, directory):
    from clients.directory import Status

    assert directory.person_at(dn).status in (Status.UNKNOWN, Status.ERROR)


# --------------------------------------------------------------------------- git adapter

def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Dev One", "GIT_AUTHOR_EMAIL": "dev.one@corp.example",
           "GIT_COMMITTER_NAME": "Dev One", "GIT_COMMITTER_EMAIL": "dev.one@corp.example",
           "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def _repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mirrors")
    _repo(root / "mirrors" / "acme" / "app", {
        "src/app.py": "print('app')\n", "tests/test_app.py": "pass\n",
        "CODEOWNERS": "* owner@corp.example\n",
    })
    outside = _repo(root / "outside", {"secret.txt": "not yours\n"})
    (root / "mirrors" / "acme" / "escape").symlink_to(outside)
    return root / "mirrors"


HOSTILE_SOURCES = {
    "parent": "../outside",
    "nested-parent": "acme/../../outside",
    "absolute": "/etc",
    "home": "~root/x",
    "backslashes": "acme\\..\\..\\outside",
    "nul": "acme/app\x00",
    "option": "--upload-pack=touch pwned",
    "option-segment": "acme/-c core.sshCommand=touch pwned",
    "symlink-out-of-root": "acme/escape",
    "dot-segment": "acme/./app",
    "empty-segment": "acme//app",
    "empty": "",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SOURCES))
def test_git_refuses_hostile_source_names(name, mirrors):
    from clients.git import GitRepositories, RepositoryMissing

    repos = GitRepositories(mirrors)
    source = HOSTILE_SOURCES[name]
    assert not repos.available(source)
    with pytest.raises(RepositoryMissing):
        repos.recent_committers(source, "src/app.py")
    assert repos.calls == 0  # refused before any git process
    assert repos.recent_committers("acme/app", "src/app.py")[0].email == "dev.one@corp.example"


HOSTILE_REPO_PATHS = [
    "--upload-pack=touch {out}/pwned",
    "--output={out}/pwned",
    "-o{out}/pwned",
    "../../etc/passwd",
    ":(glob)**",
    "*",
    "src/*",
    "src/app.py\x00--output={out}/pwned",
]


@pytest.mark.parametrize("template", HOSTILE_REPO_PATHS)
def test_git_treats_hostile_paths_as_data(template, mirrors, tmp_path):
    from clients.git import GitRepositories

    repos = GitRepositories(mirrors)
    hostile = template.format(out=tmp_path)
    found = repos.last_commits("acme/app", [hostile, "src/app.py"])
    assert set(found) == {"src/app.py"}  # the honest path is answered as usual
    assert repos.recent_committers("acme/app", hostile) == []
    owners = repos.codeowners_many("acme/app", [hostile])[hostile]
    assert owners in ([], ["owner@corp.example"])  # a name matched by "*", or refused
    assert not list(tmp_path.iterdir()), "git must never write a file named by a path"


def test_git_ignores_option_like_shas_and_addresses(mirrors):
    from clients.git import GitRepositories

    repos = GitRepositories(mirrors)
    head = _git(mirrors / "acme" / "app", "rev-parse", "HEAD").strip()
    authors = repos.commit_authors("acme/app", ["--all", "HEAD", "-p", "abc;id", head])
    assert set(authors) == {head}
    mapped = repos.mailmap("acme/app", ["--help@corp.example", "<evil>@x", "a\n<b>"])
    assert mapped == {"--help@corp.example": "--help@corp.example"}


# --------------------------------------------------------------------------- end to end

SCRIPT = "<script>alert(1)</script>"


def _inject_hostile(box) -> dict[str, int]:
    """Hostile incidents in a live sandbox, one hostile source among them."""
    store = box.store
    template = next(iter(store.sources.values()))
    hostile_source = {**template, "id": 990_001, "full_name": "../../--upload-pack=touch pwned",
                      "url": "https://example.invalid/hostile"}
    store.sources[hostile_source["id"]] = hostile_source
    new = box.events.new_incident
    return {
        "assignee-filter": new(status="ASSIGNED", assignee_email="*)(mail=*",
                               filepath="--upload-pack=touch pwned", author_email="*",
                               source_id=hostile_source["id"])["id"],
        "assignee-script": new(status="ASSIGNED", assignee_email=f"{SCRIPT}@corp.example",
                               incident_name=f"{SCRIPT}\x1b[2J", filepath="../../etc/passwd",
                               author_email=f"{SCRIPT}@corp.example")["id"],
        "author-nul": new(validity="invalid", author_email="x@corp.example\x00)(mail=*",
                          author_name="<img src=x onerror=alert(1)>",
                          filepath=f"tests/{SCRIPT}\u202e.py")["id"],
        "author-zero-width": new(validity="invalid", author_email="dev\u200b@corp.example",
                                 filepath="tests/../config/prod.py",
                                 source_id=hostile_source["id"])["id"],
    }


def _flow(flow_fn, **parameters):
    parameters.setdefault("max_actions", 500)
    return run_flow(flow_fn, **parameters)


@pytest.mark.slapd
@pytest.mark.prefect
def test_playbooks_on_a_sandbox_with_hostile_incidents(playbook_env):
    from flows.auto_ignore import auto_ignore
    from flows.commit_author_triage import commit_author_triage
    from flows.departed_developers import PLAYBOOK as DEPARTED
    from flows.departed_developers import departed_developers
    from tasks.decide.auto_ignore import PLAYBOOK as IGNORE
    from tasks.decide.auto_ignore import AutoIgnorePolicy
    from tasks.decide.commit_author_triage import PLAYBOOK as TRIAGE
    from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy
    from tasks.decide.departed_developers import DepartedDevelopersPolicy
    from tasks.decide.identity import normalise_email
    from tests.security.conftest import run_records

    hostile = _inject_hostile(playbook_env.sandbox)
    hostile_ids = set(hostile.values())
    before = playbook_env.sandbox.state()
    truth = {name: ground_truth(playbook_env.sandbox, name) for name in (TRIAGE, IGNORE, DEPARTED)}

    # Triage (real): the clean incidents are assigned exactly as in a clean run, no hostile one.
    triage_state, triage = _flow(commit_author_triage, policy=CommitAuthorTriagePolicy(),
                                 dry_run=False)
    assert triage_state.is_completed(), triage_state.message
    assert {i: normalise_email(a["email"]) for i, a in plan_of(triage, "assign").items()} == {
        i: normalise_email(a["arguments"]["email"]) for i, a in truth[TRIAGE].items()}
    skipped = {r["incident_id"]: r for r in triage["skipped"]}
    assert {hostile["author-nul"], hostile["author-zero-width"]} <= set(skipped)

    # Auto-ignore (dry): the test-path incident with a <script> file name is a correct ignore;
    # "tests/../config/prod.py" is not a test path.
    ignore_state, ignore = _flow(auto_ignore, policy=AutoIgnorePolicy(),
                                 dry_run=True)
    assert ignore_state.is_completed(), ignore_state.message
    assert set(plan_of(ignore, "ignore")) == set(truth[IGNORE]) | {hostile["author-nul"]}
    reasons = {r["incident_id"]: r["reason"] for r in ignore["skipped"]}
    assert reasons[hostile["author-zero-width"]] == "production_path"

    # Departed (real): hostile assignees are nobody the directory knows: left alone.
    departed_state, departed = _flow(departed_developers, policy=DepartedDevelopersPolicy(),
                                     dry_run=False)
    assert departed_state.is_completed(), departed_state.message
    assert set(plan_of(departed, "assign")) == set(truth[DEPARTED])
    assert {o["result"] for o in departed["outcomes"]} == {"applied"}

    # The hostile incidents are exactly as they were: no write, no note.
    after = playbook_env.sandbox.state()
    for incident_id in hostile_ids:
        assert after["incidents"][incident_id] == before["incidents"][incident_id]
        assert after["notes"].get(incident_id, []) == before["notes"].get(incident_id, [])

    # Results hold no raw control character; Markdown artifacts hold hostile text only escaped.
    for result in (triage, ignore, departed):
        for row in result["plan"] + result["skipped"] + result["outcomes"]:
            for value in row.values():
                assert not CONTROL.search(str(value)), row
    records = run_records([s.state_details.flow_run_id
                           for s in (triage_state, ignore_state, departed_state)])
    assert records["markdown"], "each run publishes a Markdown summary"
    for text in records["markdown"]:
        assert SCRIPT not in text and "<img" not in text
        assert not CONTROL.search(text.replace("\n", ""))
