"""Every bad input of issue 15, on the real command line (subprocesses, as a person types them):
exit 2 (1 for an outage) before any Prefect server starts, one `error:` line naming what to
fix, no traceback, and nothing written (no ledger file, no report folder, the sandbox's audit
log unchanged).

No Prefect server is configured for these runs: a check made after a Prefect flow started
would first start a temporary server (10-20 s of the issue's 3 s), which creates its database
in the run's PREFECT_HOME. Its absence shows the check ran before, without timing anything
(speed is measured in benchmarks/, never asserted on a shared machine).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.export import environment

ROOT = Path(__file__).resolve().parents[2]

DEPARTED = ["-m", "flows.departed_developers"]
BULK = ["-m", "flows.bulk_remediation"]
REPORT = ["-m", "flows.weekly_report"]
NOTE = ["--action", '{"kind": "note"}', "--reason", "issue 15 check"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# (name, arguments, environment changes (None: unset), exit code, words the error line holds)
CASES = [
    ("bad --week", REPORT + ["--week", "2026-W99"], {}, 2, ["--week", "2026 has no ISO week 99"]),
    ("bad --week text", REPORT + ["--week", "last week"], {}, 2, ["--week", "2026-W49"]),
    ("bad --timezone", REPORT + ["--timezone", "Europe/Pariss"], {}, 2,
     ["--timezone", "IANA", "Europe/Paris"]),
    ("wrong key", DEPARTED, {"GITGUARDIAN_API_KEY": "not-the-key"}, 2,
     ["refused the API key", "GITGUARDIAN_API_KEY", "gitguardian-api-key"]),
    ("wrong key, report", REPORT, {"GITGUARDIAN_API_KEY": "not-the-key"}, 2,
     ["refused the API key"]),
    ("missing key", DEPARTED, {"GITGUARDIAN_API_KEY": None}, 2,
     ["no GitGuardian API key", "GITGUARDIAN_API_KEY", "gitguardian-api-key"]),
    ("missing key, report", REPORT, {"GITGUARDIAN_API_KEY": None}, 2, ["GITGUARDIAN_API_KEY"]),
    ("unreachable URL", DEPARTED, {"GITGUARDIAN_API_URL": "unreachable"}, 1,
     ["GitGuardian API unavailable", "GITGUARDIAN_API_URL"]),
    ("unreachable URL, report", REPORT, {"GITGUARDIAN_API_URL": "unreachable"}, 1,
     ["GitGuardian API unavailable"]),
    ("plain http to a remote host", DEPARTED, {"GITGUARDIAN_API_URL": "http://api.example.com"},
     2, ["GITGUARDIAN_API_URL", "https"]),
    ("key lacking a scope", DEPARTED + ["--apply"], {"GITGUARDIAN_API_KEY": "read"}, 2,
     ["incidents:write"]),
    ("unknown api_filters name",
     BULK + ["--selection", '{"api_filters": {"detector_name": "aws"}}'] + NOTE, {}, 2,
     ["detector_name", "detector_group_name"]),
    ("bulk selection with no filter", BULK + ["--selection", "{}"] + NOTE, {}, 2,
     ["no filter", "confirm_all"]),
    ("pydantic-invalid policy value", ["-m", "flows.auto_ignore", "--validities", "valid"],
     {}, 2, ["--validities", "never ignored"]),
    ("pydantic choice", BULK + ["--selection", '{"status": ["OPEN"]}', "--action",
                                '{"kind": "close"}', "--reason", "x"], {}, 2,
     ["--selection.status.0", "'TRIGGERED', 'ASSIGNED'", "--action.kind", "'resolve'"]),
    ("not JSON", BULK + ["--selection", "{status: OPEN}"] + NOTE, {}, 2,
     ["--selection", "not valid JSON"]),
    ("not a number", DEPARTED + ["--manager-depth", "many"], {}, 2, ["--manager-depth"]),
    ("negative --max-actions", DEPARTED + ["--max-actions", "-1"], {}, 2, ["max_actions"]),
    ("no directory", DEPARTED, {"DIRECTORY_JSON": None}, 2, ["LDAP_URL", "DIRECTORY_JSON"]),
    ("bad LDAP_URL", DEPARTED, {"DIRECTORY_JSON": None, "LDAP_URL": "corp-ldap:389"}, 2,
     ["LDAP_URL", "ldap://"]),
    ("bad LEDGER_URL", DEPARTED, {"LEDGER_URL": "ledger.sqlite"}, 2, ["LEDGER_URL"]),
]


@pytest.fixture(scope="module")
def world(sandbox, sandbox_export, tmp_path_factory):
    return sandbox, sandbox_export


def _environment(box, export: Path, tmp: Path, changes: dict) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "GITGUARDIAN_", "LDAP_", "LEDGER_"))
           and k not in ("DIRECTORY_JSON", "GIT_MIRRORS_ROOT")}
    env.update(
        PREFECT_HOME=str(tmp / "prefect-home"), DO_NOT_TRACK="1", PYTHONUNBUFFERED="1",
        **environment(export, url=box.url, key=box.tokens["full"], ledger=tmp / "ledger.sqlite"),
    )
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        elif name == "GITGUARDIAN_API_URL" and value == "unreachable":
            env[name] = f"http://127.0.0.1:{_closed_port()}"
        elif name == "GITGUARDIAN_API_KEY" and value in box.tokens:
            env[name] = box.tokens[value]
        else:
            env[name] = value
    return env


def _run(arguments: list[str], env: dict[str, str],
         tmp: Path) -> tuple[subprocess.CompletedProcess, float]:
    if arguments[:2] == REPORT:
        arguments = arguments + ["--output-dir", str(tmp / "reports")]
    started = time.monotonic()
    done = subprocess.run([sys.executable, *arguments], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    return done, time.monotonic() - started


@pytest.mark.parametrize("name, arguments, changes, code, words", CASES,
                         ids=[case[0] for case in CASES])
def test_a_bad_input_is_one_line_fast_and_writes_nothing(world, tmp_path, name, arguments,
                                                         changes, code, words):
    box, export = world
    before = box.state()["audit_logs"]
    env = _environment(box, export, tmp_path, changes)
    done, elapsed = _run(arguments, env, tmp_path)
    output = done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == code, output
    assert len(errors) == 1, output
    for word in words:
        assert word in done.stderr, (word, output)
    assert "Traceback" not in output
    # No temporary Prefect server was started: the check came before any flow.
    started_server = sorted(p.name for p in (tmp_path / "prefect-home").glob("*.db"))
    assert started_server == [], f"{name}: {elapsed:.1f} s, {started_server}\n{output}"
    # Nothing written: no ledger, no report folder, no write in GitGuardian.
    assert not (tmp_path / "ledger.sqlite").exists()
    assert not (tmp_path / "reports").exists()
    assert box.state()["audit_logs"] == before
    if env.get("GITGUARDIAN_API_KEY"):
        assert env["GITGUARDIAN_API_KEY"] not in output


def test_debug_shows_the_traceback(world, tmp_path):
    box, export = world
    env = _environment(box, export, tmp_path, {"GITGUARDIAN_API_KEY": "not-the-key"})
    done, _ = _run(DEPARTED + ["--debug"], env, tmp_path)
    assert done.returncode == 2
    assert "Traceback" in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")]


def test_help_answers_before_prefect_loads(world, tmp_path):
    """`--help` of a playbook and of the report, without importing Prefect (the fast path)."""
    code = ("import runpy, sys; sys.argv = [sys.argv[1], '--help']\n"
            "try:\n    runpy.run_module(sys.argv[0], run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(json.dumps('prefect' in sys.modules))")
    for module in ("flows.departed_developers", "flows.weekly_report"):
        done = subprocess.run([sys.executable, "-c", "import json\n" + code, module], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert "--debug" in done.stdout, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1]) is False, module
