"""The deployment's parts as local subprocesses, for the event path (deployments/event_path.py),
its benchmark and the deployment tests: a free loopback port, polling until something is up,
stopping a process by its PID (its own process group, never by name), a log's tail, and a
`prefect server start` on a free port.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, *, timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll `check()` until it returns something truthy (returned); TimeoutError after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def stop(process: subprocess.Popen, *, times: int = 1, timeout: float = 15.0) -> None:
    """SIGTERM the process group (`times` times: a worker shuts down on the second), then kill."""
    for _ in range(times):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout / times)
            return
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def start_prefect_server(cwd: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """`prefect server start` on a free loopback port, in its own process group, its output in
    `log`; (the process, its API URL ending in /api) once /api/health answers. The caller
    stops it (`stop`)."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
             str(port)], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited early:\n{tail(log)}")
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{url}/health", timeout=2).status_code == 200
        return False

    try:
        wait_until(healthy, timeout=90, what="the Prefect server's /api/health")
    except BaseException:
        stop(process)
        raise
    return process, url
