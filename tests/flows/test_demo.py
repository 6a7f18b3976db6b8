"""The demo is honest (issue 15): run twice into one folder, each run starts a new ledger and
report (the sandbox is new each time), so the report's automation figures equal the sandbox's
audit log of that run; every step passes with the default blast radius (sized to each plan); a
failed step makes the demo say so and exit non-zero."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.demo import line as _line
from tests.fixtures.demo import run_demo
from tests.fixtures.prefect import seed_prefect_home

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow]


def _demo(tmp_path: Path, *args: str, template: Path | None = None
          ) -> subprocess.CompletedProcess:
    """The demo into tmp_path/demo; its PREFECT_HOME a copy of `template`'s migrated database
    (what a machine that ran Prefect before has), or new."""
    home = tmp_path / "prefect-home"
    if template is not None:
        seed_prefect_home(home, template)
    return run_demo(tmp_path / "demo", home, *args)


def _check_honest(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Done. Where to look next" in done.stdout
    assert "FAILED" not in done.stdout
    audit = _line(done.stdout, "writes of this demo, by the sandbox's audit log")
    reported = _line(done.stdout, "writes of this demo, by the report's automation table")
    assert audit != "none" and re.search(r"assign \d+", audit), audit
    assert reported == audit


def test_two_demo_runs_in_one_folder_report_what_each_sandbox_saw(shared_demo, tmp_path):
    # The first run is the session's (seed 7, a new PREFECT_HOME); the second goes into a copy
    # of its folder and PREFECT_HOME, as a user's second `make demo` would.
    _check_honest(shared_demo.done)
    shutil.copytree(shared_demo.out, tmp_path / "demo")
    shutil.copytree(shared_demo.home, tmp_path / "prefect-home")
    done = _demo(tmp_path, "--incidents", "400", "--seed", "4")
    _check_honest(done)
    # The hint works as printed, from the repository root.
    hint = re.search(r"each playbook's options: (\S+) -m (\S+) --help", done.stdout)
    assert hint, done.stdout[-1000:]
    helped = subprocess.run([hint[1], "-m", hint[2], "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert helped.returncode == 0 and "--dry-run" in helped.stdout


def test_a_failed_step_makes_the_demo_fail(failing_demo):
    done = failing_demo.done  # --incidents 300 --max-actions 1 (tests/fixtures/demo.py)
    assert done.returncode == 1, done.stdout[-3000:]
    assert re.search(r"\d+ step\(s\) FAILED: ", done.stdout), done.stdout[-3000:]
    assert "Done." not in done.stdout
    assert "applied: FAILED" in done.stdout


@pytest.mark.prefect
def test_the_events_demo_shows_a_webhook_assigning_an_incident(tmp_path, prefect_db_template):
    """`make demo ARGS=--events` (issue 16): a real server, receiver and served deployments;
    the new incident ends assigned, and the new-incidents run its webhook started is listed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = _demo(tmp_path, "--events", "--incidents", "200", "--ui-port", str(port),
                 template=prefect_db_template)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assigned = re.search(r"Incident #(\d+) is ASSIGNED, assigned to (\S+),", done.stdout)
    assert assigned, done.stdout[-3000:]
    triage = [line for line in done.stdout.splitlines() if "new incidents · WRITES" in line]
    assert triage and f"incident_ids=[{assigned.group(1)}]" in triage[0], done.stdout[-3000:]
