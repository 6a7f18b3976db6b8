"""The event path with real parts, for the end-to-end test, the demo and the benchmark
(benchmarks/event_path.py):

    sandbox (signed webhooks) -> `python -m deployments.webhooks` -> Prefect server (events,
    automations from prefect.yaml's triggers) -> `python -m deployments.serve` -> flow runs
    -> writes back to the sandbox

`EventPath` starts the receiver and `serve` as subprocesses (each in its own process group,
stopped by its PID) against a Prefect server the caller runs, and a sandbox in this process
whose webhooks go to the receiver. The served prefect.yaml is the checkout's, with the event
playbooks' deployments only (new incidents, triage, auto-ignore, departed) and writes turned on
(`writes=True`), the way an operator turns them on once plans have been read.
"""
from __future__ import annotations

import contextlib
import copy
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from deployments.processes import free_port, stop, tail, wait_until
from sandbox.export import environment

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOKS = ("flows/new_incidents.py", "flows/commit_author_triage.py", "flows/auto_ignore.py",
             "flows/departed_developers.py")


def event_yaml(out: Path, *, writes: bool = True, max_actions: int = 1000) -> Path:
    """prefect.yaml with the event playbooks' deployments only, writing unless `writes` is
    off."""
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    kept = []
    for deployment in document["deployments"]:
        if deployment["entrypoint"].split(":")[0] not in PLAYBOOKS:
            continue
        deployment["parameters"] = {**deployment.get("parameters", {}),
                                    "max_actions": max_actions}
        if writes:
            deployment["parameters"]["dry_run"] = False
        kept.append(deployment)
    document["deployments"] = kept
    out.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return out


class RequestCounter:
    """Every API request the sandbox serves (hooks run in its server)."""

    def __init__(self, box: Any):
        self.count = 0
        self._lock = threading.Lock()
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            box.before(method, r"/v1/.*", self._seen, times=None)

    def _seen(self, _box: Any) -> None:
        with self._lock:
            self.count += 1


@dataclass
class EventPath:
    api_url: str  # the Prefect API, ending in /api
    base_env: dict[str, str]
    workdir: Path
    workspace: Any  # the sandbox workspace (deep-copied here)
    export: Path  # its export (directory.json, repos/)
    token: str  # the webhook signature token
    window: float = 1.0
    box: Any = None
    receiver_url: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    counter: RequestCounter | None = None

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name], self.logs[name] = process, log
        return process

    @contextlib.contextmanager
    def running(self, *, writes: bool = True, max_actions: int = 1000,
                env: dict[str, str] | None = None) -> Iterator[EventPath]:
        """The receiver and serve running; `env`: more variables for serve (its runs)."""
        import sandbox

        base = {**self.base_env, "PREFECT_API_URL": self.api_url, "PWD": str(ROOT),
               # The receiver reads it too: our own assignments coming back start nothing.
               "LEDGER_URL": f"sqlite:///{self.workdir / 'ledger.sqlite'}"}
        port = free_port()
        receiver = self._spawn("receiver", [
            "-m", "deployments.webhooks", "--port", str(port), "--window", str(self.window)],
            {**base, "GITGUARDIAN_WEBHOOK_TOKEN": self.token})
        self.receiver_url = f"http://127.0.0.1:{port}/webhooks/gitguardian"

        def receiver_up() -> bool:
            if receiver.poll() is not None:
                raise RuntimeError(f"the receiver exited:\n{tail(self.logs['receiver'])}")
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok
            return False

        try:
            wait_until(receiver_up, timeout=60, what="the webhook receiver")
            with sandbox.running(workspace=copy.deepcopy(self.workspace),
                                 webhook_url=self.receiver_url,
                                 webhook_token=self.token) as box:
                self.box = box
                self.counter = RequestCounter(box)
                served = event_yaml(self.workdir / "prefect-events.yaml", writes=writes,
                                    max_actions=max_actions)
                self._spawn("serve", ["-m", "deployments.serve", "--file", str(served)], {
                    **base,
                    **environment(self.export, url=box.url, key=box.token),
                    # serve looks for runs to start every 10 s by default: a triggered run
                    # would wait up to that long (README: event latency).
                    "PREFECT_RUNNER_POLL_FREQUENCY": "1",
                    **(env or {}),
                })
                wait_until(self._automations_ready, timeout=120,
                           what=f"serve's deployments and triggers\n{tail(self.logs['serve'])}")
                yield self
        finally:
            for process in self.processes.values():
                stop(process, times=2)

    def _automations_ready(self) -> bool:
        if self.processes["serve"].poll() is not None:
            raise RuntimeError(f"serve exited:\n{tail(self.logs['serve'])}")
        with self.client() as client:
            deployments = client.read_deployments()
            automations = client.read_automations()
        # The four deployments; their three triggers and the approval-timeout automation.
        return len(deployments) == len(PLAYBOOKS) and len(automations) >= 4

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api_url}):
            with get_client(sync_client=True) as client:
                yield client

    def flow_runs(self) -> list[Any]:
        with self.client() as client:
            return client.read_flow_runs(limit=200)

    def incident(self, incident_id: int) -> dict[str, Any]:
        """The incident as the sandbox's API answers it."""
        answer = requests.get(f"{self.box.url}/v1/incidents/secrets/{incident_id}",
                              headers={"Authorization": f"Token {self.box.token}"}, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def leak_like(self, template_id: int, **fields: Any) -> dict[str, Any]:
        """`leak_like` in this path's sandbox."""
        return leak_like(self.box, template_id, **fields)


def leak_like(box: Any, template_id: int, **fields: Any) -> dict[str, Any]:
    """A new incident in the sandbox `box` that repeats an existing one's leak (its author,
    source and path), so triage finds the same author; fields override."""
    occurrence = box.store.occurrences_by_incident[template_id][0]
    options = dict(filepath=occurrence.get("filepath"),
                   author_email=occurrence.get("author_info"),
                   author_name=occurrence.get("author_name") or "Someone",
                   source_id=(occurrence.get("source") or {}).get("id"))
    options.update(fields)
    return box.events.new_incident(**options)


def triage_examples(workspace: Any) -> list[tuple[int, str]]:
    """(incident id, expected assignee e-mail) from the generator's ground truth for triage."""
    from tasks.decide.identity import normalise_email

    truth = workspace.ground_truth["commit-author-triage"]["actions"]
    single = Counter(o["incident_id"] for o in workspace.occurrences)
    # Only leaks of one occurrence: `leak_like` repeats the first occurrence alone, and an
    # incident decided by several (a .mailmap alias on another) would be decided otherwise.
    return sorted((int(i), normalise_email(a["arguments"]["email"])) for i, a in truth.items()
                  if a.get("action") == "assign" and single[int(i)] == 1)


def settle(path: EventPath, quiet: float = 2.5, timeout: float = 120) -> None:
    """Wait until no flow run is pending or running and the request count stood still."""
    deadline = time.monotonic() + timeout
    last, since = path.counter.count, time.monotonic()
    while time.monotonic() < deadline:
        busy = any(r.state is None or not r.state.is_final() for r in path.flow_runs())
        if path.counter.count != last or busy:
            last, since = path.counter.count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.2)
