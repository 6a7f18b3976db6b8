"""Outages: GitGuardian down, the directory down, a git repository missing; and every test
server on loopback only.

A part that is down ends the run before any write, with a message naming it; a missing
repository only costs the incidents that needed it.
"""
from __future__ import annotations

import json
import logging
import shutil
import socket
from urllib.parse import urlsplit

import pytest

from tests.stress.conftest import run_flow

pytestmark = [pytest.mark.slapd, pytest.mark.prefect]


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def quick_task_retries(monkeypatch):
    """The fetch tasks wait 5 s before their one retry; the retry stays, the wait goes (the
    token check's second try too)."""
    from tasks import fetch

    monkeypatch.setattr("tasks.playbook.TOKEN_RETRY_SECONDS", 0.0)

    for name in ("fetch_members", "fetch_incidents", "fetch_occurrences"):
        monkeypatch.setattr(fetch, name, getattr(fetch, name).with_options(retry_delay_seconds=0))


@pytest.mark.parametrize("how", ["unused-port", "stopped"])
def test_gitguardian_down_fails_before_any_write_naming_the_api(how, stress_world,
                                                                quick_task_retries):
    with stress_world.sandbox() as box:
        stress_world.point_at(box, f"down-{how}")
        before = box.state()
        if how == "unused-port":
            down = f"http://127.0.0.1:{unused_port()}"
            stress_world.monkeypatch.setenv("GITGUARDIAN_API_URL", down)
        else:
            box.stop()
        state, result = run_flow("departed")
        assert state.is_failed()
        text = f"{state.message} {result}"
        assert "GitGuardian API" in text and "unavailable" in text.lower(), text
        assert box.token not in text
        if how == "unused-port":
            assert box.state()["audit_logs"] == before["audit_logs"]
        else:
            assert box.store.audit_logs == before["audit_logs"]


def test_directory_down_stops_triage_before_any_write(stress_world):
    with stress_world.sandbox() as box:
        stress_world.point_at(box, "triage-no-ldap")
        stress_world.monkeypatch.setenv("LDAP_URL", f"ldap://127.0.0.1:{unused_port()}/")
        before = box.state()
        state, result = run_flow("triage")
        assert state.is_failed()
        text = f"{state.message} {result}".lower()
        assert "directory" in text and "unavailable" in text, text
        assert stress_world.directory.password not in text
        assert box.state()["audit_logs"] == before["audit_logs"]


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_missing_repository_only_skips_the_incidents_that_need_it(stress_world, tmp_path):
    from flows.departed_developers import PLAYBOOK

    with stress_world.sandbox() as box:
        stress_world.point_at(box, "git-missing")
        truth = box.workspace.ground_truth[PLAYBOOK]["actions"]
        sources = {i: {o["source"]["full_name"] for o in occ if o.get("source")}
                   for i, occ in box.state()["occurrences"].items()}
        from_git = {int(i) for i, a in truth.items() if a["reason"] != "manager"}
        assert from_git, "the workspace should hold reassignments decided by git"
        # The repository behind the most git-decided reassignments.
        counts: dict[str, int] = {}
        for incident_id in from_git:
            for name in sources[incident_id]:
                counts[name] = counts.get(name, 0) + 1
        missing = max(sorted(counts), key=counts.get)

        state, full = run_flow("departed", dry_run=True)
        assert state.is_completed(), state.message

        mirrors = tmp_path / "repos"
        shutil.copytree(stress_world.export / "repos", mirrors, symlinks=True)
        shutil.rmtree(mirrors / missing)
        stress_world.monkeypatch.setenv("GIT_MIRRORS_ROOT", str(mirrors))
        seen = Collect()
        flow_logger = logging.getLogger("prefect.flow_runs")
        flow_logger.addHandler(seen)
        try:
            state, partial = run_flow("departed", dry_run=True)
        finally:
            flow_logger.removeHandler(seen)
        assert state.is_completed(), state.message

    plan_full = {r["incident_id"]: r for r in full["plan"]}
    plan_partial = {r["incident_id"]: r for r in partial["plan"]}
    lost = set(plan_full) - set(plan_partial)
    assert lost, f"removing {missing} should cost at least one reassignment"
    # Only incidents whose leaking file sits in the missing repository change...
    assert all(missing in sources[i] for i in lost), lost
    # ...and every other decision is exactly the same.
    assert {i: r for i, r in plan_partial.items()} == {i: plan_full[i] for i in plan_partial}
    skipped = {s["incident_id"] for s in partial["skipped"]}
    assert lost <= skipped
    # The log names the repository for each incident it cost.
    named = [m for m in seen.messages if missing in m]
    assert named, seen.messages
    assert json.dumps(partial, default=str).count(box.token) == 0


def listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net shows them) of the sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1


def test_every_test_server_listens_on_loopback_only(sandbox, sandbox_directory, prefect_server):
    from prefect.settings import PREFECT_API_URL

    servers = {
        "sandbox": sandbox.url,
        "slapd": sandbox_directory.url,
        "prefect": str(PREFECT_API_URL.value()),
    }
    for name, url in servers.items():
        parts = urlsplit(url)
        assert parts.hostname in ("127.0.0.1", "localhost", "::1"), (name, url)
        addresses = listening(parts.port)
        assert addresses, f"{name}: nothing listens on port {parts.port}"
        assert addresses <= LOOPBACK, f"{name} listens on {addresses}"
