"""`python -m sandbox serve` as a user runs it, `--state-file`, and same seed -> same answers."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import sandbox
from sandbox.__main__ import _parser

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token-full"


def start_serve(*extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--port", "0", "--incidents", "30",
         "--token", TOKEN, "--now", "2026-06-01", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    url = None
    for _ in range(10):  # the banner comes before serving starts
        line = process.stdout.readline()
        if line.startswith("GITGUARDIAN_API_URL="):
            url = line.strip().split("=", 1)[1]
        if line.startswith("GITGUARDIAN_API_KEY="):
            assert line.strip().split("=", 1)[1] == TOKEN
            break
    assert url and url.startswith("http://127.0.0.1:")
    deadline = time.monotonic() + 30
    while True:  # poll until the socket answers; no fixed sleep
        try:
            requests.get(url + "/v1/health", timeout=2)
            return process, url
        except requests.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)  # by PID: only the server we started
    try:
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_prints_url_and_token_answers_and_keeps_state(tmp_path):
    state_file = tmp_path / "state.json"
    headers = {"Authorization": f"Token {TOKEN}"}
    process, url = start_serve("--state-file", str(state_file))
    try:
        incidents = requests.get(url + "/v1/incidents/secrets", headers=headers,
                                 params={"status": "TRIGGERED", "per_page": 1}, timeout=10).json()
        incident_id = incidents[0]["id"]
        resolved = requests.post(f"{url}/v1/incidents/secrets/{incident_id}/resolve",
                                 headers=headers, json={"secret_revoked": True}, timeout=10)
        assert resolved.status_code == 200
    finally:
        stop(process)
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    assert saved["incidents"][str(incident_id)]["status"] == "RESOLVED"
    assert TOKEN not in state_file.read_text(encoding="utf-8")

    process, url = start_serve("--state-file", str(state_file))
    try:
        again = requests.get(f"{url}/v1/incidents/secrets/{incident_id}", headers=headers,
                             timeout=10).json()
        assert again["status"] == "RESOLVED"
    finally:
        stop(process)


def test_cli_options_are_checked():
    args = _parser().parse_args(["serve", "--rate-limit", "50", "--faults", "0.1",
                                 "--latency-ms", "5", "--seed", "3"])
    assert (args.rate_limit, args.faults, args.latency_ms, args.seed) == (50, 0.1, 5, 3)
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--faults", "1.5"])
    assert _parser().parse_args(["export", "--out", "x"]).incidents == 2000


def test_same_seed_gives_the_same_answers():
    paths = ["/v1/incidents/secrets?per_page=50&ordering=-risk_score",
             "/v1/occurrences/secrets?per_page=50", "/v1/members?per_page=100",
             "/v1/sources", "/v1/incidents/secrets/3?with_occurrences=5"]

    def answers() -> list[bytes]:
        with sandbox.running(seed=11, incidents=40, now="2026-06-01T00:00:00Z") as box:
            headers = {"Authorization": f"Token {box.token}"}
            bodies = [requests.get(box.url + p, headers=headers, timeout=10).content
                      for p in paths]
            return bodies + [json.dumps(box.store.token_info(
                box.store.authenticate(box.token))["id"]).encode()]

    first, second = answers(), answers()
    assert first == second
    assert len(json.loads(first[0])) == 40
