"""Secret hygiene (issue 8, Security): a canary API key, the directory's password and the share
URLs the sandbox invents never reach a log, a Prefect artifact or log, a report file, a ledger
row, a flow's result, a state message or the text of a failure we provoke.

The playbooks run for real (dry and real, triage with sharing on so share links exist) and the
weekly report runs once, against a sandbox whose full-scope key is a distinctive canary. The
scan then reads everything those runs left behind.
"""
from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest

from flows.auto_ignore import auto_ignore

# Imported here, not in the test: importing Prefect sets up logging and replaces the root
# logger's handlers, which would drop caplog's if it came later.
from flows.commit_author_triage import commit_author_triage
from flows.departed_developers import departed_developers
from flows.weekly_report import weekly_report
from tasks.decide.auto_ignore import AutoIgnorePolicy
from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy
from tasks.decide.departed_developers import DepartedDevelopersPolicy
from tasks.report import frames
from tests.fixtures import canary
from tests.fixtures.harness import run_flow
from tests.security.conftest import run_records

pytestmark = [pytest.mark.slapd, pytest.mark.prefect]


def _ledger_rows(ledger_url: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(ledger_url)
    rows: list[str] = []
    with engine.connect() as connection:
        for table in sa.inspect(engine).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                rows.append(f"{table}: {tuple(row)}")
    engine.dispose()
    return rows


def _files(root: Path) -> dict[str, str]:
    return {str(p): p.read_bytes().decode("utf-8", "replace")
            for p in root.rglob("*") if p.is_file()}


def _flow_run_texts(flow_run_ids: list[Any]) -> list[str]:
    """What the Prefect server stores about each run besides logs and artifacts."""
    from prefect.client.orchestration import get_client

    texts = []
    with get_client(sync_client=True) as client:
        for flow_run_id in flow_run_ids:
            run = client.read_flow_run(flow_run_id)
            texts.append(json.dumps(run.parameters, default=str))
            texts.append(f"{run.name} {run.state.name if run.state else ''} "
                         f"{run.state.message if run.state else ''}")
    return texts


@pytest.fixture
def verbose_prefect_logs():
    """Every run log line reaches the Prefect server, DEBUG included (the suite sets WARNING)."""
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.task_runs")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    yield
    for lg, level in zip(loggers, levels):
        lg.setLevel(level)


def test_no_secret_leaves_a_trace(canary_env, canary_key, caplog, verbose_prefect_logs,
                                  monkeypatch, tmp_path):
    caplog.set_level(logging.DEBUG)
    ldap_password = canary_env.directory.password
    box = canary_env.sandbox
    states, results, failures = [], [], []

    def run(flow_fn, **parameters):
        state, result = run_flow(flow_fn, **parameters)
        states.append(state)
        results.append(result)
        return state, result

    # The playbooks, dry and real; triage shares with non-member authors so share links exist.
    for dry_run in (True, False):
        state, _ = run(departed_developers, policy=DepartedDevelopersPolicy(), dry_run=dry_run,
                       max_actions=500)
        assert state.is_completed(), state.message
    state, triage = run(commit_author_triage,
                        policy=CommitAuthorTriagePolicy(share_with_non_member_author=True),
                        dry_run=False, max_actions=500)
    assert state.is_completed(), state.message
    assert [o for o in triage["outcomes"] if o["action"] == "share" and o["result"] == "applied"]
    state, _ = run(auto_ignore, policy=AutoIgnorePolicy(), dry_run=False,
                   max_actions=500)
    assert state.is_completed(), state.message

    # The weekly report, after the shares, over the same week the sandbox's data fills.
    reports = tmp_path / "weekly"
    week = frames.last_complete_week(box.workspace.now, "UTC").label
    state, weekly = run(weekly_report, week=week, output_dir=str(reports))
    assert state.is_completed(), state.message
    assert weekly["files"]

    # Failures on purpose: a revoked key (401) and a directory that refuses the bind. Each
    # wrong value holds the real one, so an echo of either would show.
    monkeypatch.setenv("GITGUARDIAN_API_KEY", canary_key + "-revoked")
    state, result = run(departed_developers, policy=DepartedDevelopersPolicy(), dry_run=True)
    assert state.is_failed() and "401" in f"{state.message} {result}"
    failures.append(f"{state.message} {result!r}")
    monkeypatch.setenv("GITGUARDIAN_API_KEY", canary_key)
    monkeypatch.setenv("LDAP_PASSWORD", ldap_password + "-wrong")
    state, result = run(departed_developers, policy=DepartedDevelopersPolicy(), dry_run=True)
    assert state.is_failed() and "invalidCredentials" in f"{state.message} {result}"
    failures.append(f"{state.message} {result!r}")
    failures.extend(_direct_failures(canary_env, canary_key, ldap_password))

    # The secrets: the key, the password, every share link and its token.
    shares = [s for s in box.state()["shares"].values() if s.get("share_url")]
    assert shares, "triage should have shared at least one incident"
    secrets = {"api key": canary_key, "LDAP password": ldap_password}
    for share in shares:
        secrets[f"share url of {share['incident_id']}"] = share["share_url"]
        secrets[f"share token of {share['incident_id']}"] = share["token"]

    flow_run_ids = [s.state_details.flow_run_id for s in states]
    records = run_records(flow_run_ids)
    assert records["artifacts"] and records["logs"]
    # The client's DEBUG request lines were captured: the scan covers them.
    assert any(r.name == "clients.gitguardian" and r.levelname == "DEBUG" for r in caplog.records)
    places: dict[str, str] = {
        "captured logs": "\n".join(
            f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
        "prefect logs": "\n".join(records["logs"]),
        "prefect artifacts": "\n".join(records["artifacts"]),
        "prefect flow runs": "\n".join(_flow_run_texts(flow_run_ids)),
        "state messages": "\n".join(str(s.message) for s in states),
        "flow results": json.dumps(results, default=str),
        "ledger": "\n".join(_ledger_rows(canary_env.ledger_url)),
        "provoked failures": "\n".join(failures),
        # What the runs wrote on the platform: every workspace member can read notes.
        "notes on GitGuardian": json.dumps(box.state()["notes"], default=str),
        "audit log": json.dumps(box.state()["audit_logs"], default=str),
    }
    # Every file the runs wrote: the weekly report, the ledger's SQLite file itself.
    for path, text in _files(tmp_path).items():
        places[f"file {Path(path).relative_to(tmp_path)}"] = text
    assert any(name.endswith("report.html") for name in places)
    leaks = [f"{what} in {where}" for where, text in places.items()
             for what, secret in secrets.items() if secret in text]
    assert not leaks, leaks


def _canary_share_url() -> tuple[str, str]:
    """A share link of the sandbox's form, made now: (URL, its token)."""
    token = secrets.token_urlsafe(24)
    return f"https://dashboard.gitguardian.com/share/incidents/{token}", token


# How a share endpoint may answer with its link in the text (issue 13): (status, content
# type, body from the URL and its token). Each goes to a different incident.
_SHARE_ERROR_ANSWERS = [
    (409, "application/json", lambda url, t: json.dumps({"detail": f"Already shared: {url}"})),
    (409, "text/plain", lambda url, t: f"Conflict: /share/incidents/{t}?token={t} exists"),
    (200, "text/html", lambda url, t: f'<html><a href="{url}">your link</a></html>'),
    (200, "application/json", lambda url, t: json.dumps(
        {"share_url": url, "incident_id": "not-a-number", "expire_at": "never"})),
    (400, "application/json", lambda url, t: json.dumps({"detail": [f"bad lifespan for {url}"]})),
    (500, "text/plain", lambda url, t: f"Traceback: share {url} failed"),
]


def test_a_canary_share_url_in_error_answers_leaves_no_trace(canary_env, caplog,
                                                              verbose_prefect_logs, tmp_path):
    """A share endpoint answering a 409, a body that is not JSON, a wrong shape, a 400 or a 500,
    each quoting a canary share link: the link reaches no log, artifact, flow result, state,
    ledger row or report file (bulk share, then triage sharing, then the weekly report)."""
    from flows.bulk_remediation import bulk_remediation
    from tasks.decide.bulk_remediation import BulkAction, BulkRequest, BulkSelection

    caplog.set_level(logging.DEBUG)
    box = canary_env.sandbox
    states, results, leaked = [], [], {}

    def run(flow_fn, **parameters):
        state, result = run_flow(flow_fn, **parameters)
        states.append(state)
        results.append(result)
        return state, result

    # Bulk share of a few TRIGGERED incidents of one detector group: each answers one way.
    groups: dict[str, list[int]] = {}
    for incident in box.workspace.incidents:
        if incident["status"] == "TRIGGERED" and not incident.get("share_url"):
            groups.setdefault(incident["detector"]["detector_group_name"], []).append(
                incident["id"])
    group, ids = next((g, sorted(i)) for g, i in sorted(groups.items())
                      if len(i) >= len(_SHARE_ERROR_ANSWERS))
    for incident_id, (status, content_type, body) in zip(ids, _SHARE_ERROR_ANSWERS):
        url, token = _canary_share_url()
        leaked[f"share url answered to {incident_id} ({status} {content_type})"] = url
        leaked[f"share token answered to {incident_id}"] = token
        box.respond("POST", rf"/v1/incidents/secrets/{incident_id}/share", status,
                    body(url, token), content_type=content_type)
    policy = BulkRequest(
        selection=BulkSelection(status=["TRIGGERED"], detector_group_name=group),
        action=BulkAction(kind="share"), reason="Issue 13: share answers that quote the link")
    state, bulk = run(bulk_remediation, policy=policy, dry_run=False, max_actions=500)
    outcomes = {o["incident_id"]: o["result"] for o in bulk["outcomes"]}
    assert {outcomes[i] for i in ids[:len(_SHARE_ERROR_ANSWERS)]} - {"applied"}, outcomes
    box.clear_hooks()

    # Triage sharing with non-member authors: every share answers a 409 quoting a link.
    url, token = _canary_share_url()
    leaked["share url answered to triage"], leaked["share token answered to triage"] = url, token
    box.respond("POST", r"/v1/incidents/secrets/\d+/share", 409,
                json.dumps({"detail": f"Incident already shared at {url}"}), times=None)
    state, triage = run(commit_author_triage, dry_run=False, max_actions=500,
                        policy=CommitAuthorTriagePolicy(share_with_non_member_author=True))
    assert [o for o in triage["outcomes"] if o["action"] == "share"], triage["outcomes"]
    box.clear_hooks()

    reports = tmp_path / "weekly"
    week = frames.last_complete_week(box.workspace.now, "UTC").label
    state, weekly = run(weekly_report, week=week, output_dir=str(reports))
    assert state.is_completed(), state.message

    flow_run_ids = [s.state_details.flow_run_id for s in states]
    records = run_records(flow_run_ids)
    places: dict[str, str] = {
        "captured logs": "\n".join(
            f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records),
        "prefect logs": "\n".join(records["logs"]),
        "prefect artifacts": "\n".join(records["artifacts"]),
        "prefect flow runs": "\n".join(_flow_run_texts(flow_run_ids)),
        "state messages": "\n".join(str(s.message) for s in states),
        "flow results": json.dumps(results, default=str),
        "ledger": "\n".join(_ledger_rows(canary_env.ledger_url)),
        "notes on GitGuardian": json.dumps(box.state()["notes"], default=str),
    }
    for path, text in _files(tmp_path).items():
        places[f"file {Path(path).relative_to(tmp_path)}"] = text
    assert any(name.endswith("report.html") for name in places)
    leaks = [f"{what} in {where}" for where, text in places.items()
             for what, secret in leaked.items() if secret in text]
    leaks += [f"{what} in {where}" for where, text in places.items()
              for what in canary.secrets_in(text)]
    assert not leaks, leaks


def _direct_failures(env, canary_key: str, ldap_password: str) -> list[str]:
    """Exception texts and reprs of the adapters' own failures, raised directly."""
    from clients.directory import Directory, DirectorySettings, DirectoryUnavailable
    from clients.gitguardian import AuthenticationError, GitGuardianClient

    texts = []
    bad = GitGuardianClient(env.sandbox.url, canary_key + "-revoked", requests_per_minute=None)
    with pytest.raises(AuthenticationError) as caught:
        bad.token_info()
    texts += [str(caught.value), repr(caught.value), repr(bad), repr(vars(bad))]
    good = GitGuardianClient(env.sandbox.url, canary_key, requests_per_minute=None)
    texts += [repr(good), repr(vars(good)), repr(good.token_info())]
    settings = DirectorySettings(url=env.directory.url, bind_dn=env.directory.bind_dn,
                                 password=ldap_password + "-wrong", base_dn="dc=corp,dc=example")
    directory = Directory(settings)
    with pytest.raises(DirectoryUnavailable) as refused:
        directory.lookup(["someone@corp.example"])
    texts += [str(refused.value), repr(refused.value), repr(directory), repr(settings),
              settings.model_dump_json(), repr(vars(directory))]
    return texts


def test_servers_listen_on_loopback_only(sandbox, slapd, prefect_server):
    """The sandbox, the test slapd and the test Prefect server are reachable on loopback only."""
    import ipaddress
    import socket
    from urllib.parse import urlsplit

    from prefect.settings import PREFECT_API_URL

    urls = {"sandbox": sandbox.url, "slapd": slapd.url, "prefect": PREFECT_API_URL.value()}
    for name, url in urls.items():
        host = urlsplit(url).hostname
        assert host == "localhost" or ipaddress.ip_address(host).is_loopback, (name, url)
    # Where the machine has a non-loopback address, the sandbox's port is closed on it.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("10.255.255.255", 1))  # no packet is sent for UDP connect
            own = probe.getsockname()[0]
    except OSError:
        own = ""
    if own and not ipaddress.ip_address(own).is_loopback:
        port = urlsplit(sandbox.url).port
        with socket.socket() as client, pytest.raises(OSError):
            client.settimeout(2)
            client.connect((own, port))
