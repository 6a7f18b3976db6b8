"""`GitGuardianSettings.from_env`: the GITGUARDIAN_* variables read in one place, the key never
shown; and the layers: nothing under clients/ or tasks/ imports deployments/, flows/ or
benchmarks/."""
from __future__ import annotations

import ast
import secrets
from pathlib import Path

import pytest

from clients.gitguardian import DEFAULT_BASE_URL, GitGuardianSettings
from clients.ratelimit import RateLimiter, SharedRateLimiter

ROOT = Path(__file__).resolve().parents[2]


def _key() -> str:
    return "test-" + secrets.token_hex(12)  # made at run time, never committed


def test_defaults_and_every_variable():
    plain = GitGuardianSettings.from_env({})
    assert (plain.base_url, plain.requests_per_minute, plain.max_retries) == (
        DEFAULT_BASE_URL, 200, 3)
    assert not plain.shared_rate_limit and plain.retry_backoff_cap is None
    key = _key()
    env = {"GITGUARDIAN_API_URL": "http://127.0.0.1:8999", "GITGUARDIAN_API_KEY": key,
           "GITGUARDIAN_REQUESTS_PER_MINUTE": "600", "GITGUARDIAN_SHARED_RATE_LIMIT": "yes",
           "GITGUARDIAN_MAX_RETRIES": "6", "GITGUARDIAN_RETRY_BACKOFF_CAP": "0.02"}
    settings = GitGuardianSettings.from_env(env)
    assert settings.base_url == "http://127.0.0.1:8999" and settings.key_value() == key
    assert settings.requests_per_minute == 600 and settings.shared_rate_limit
    policy = settings.retry_policy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay) == (7, 0.02, 0.02)
    assert GitGuardianSettings.from_env(env, api_key="other-key").key_value() == "other-key"


def test_the_key_never_shows():
    key = _key()
    settings = GitGuardianSettings.from_env({"GITGUARDIAN_API_KEY": key})
    for text in (repr(settings), str(settings), str(settings.model_dump()),
                 settings.model_dump_json(), repr(settings.client())):
        assert key not in text


def test_the_limiter_follows_the_settings(monkeypatch):
    key = _key()
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    off = GitGuardianSettings.from_env({"GITGUARDIAN_API_KEY": key,
                                        "GITGUARDIAN_REQUESTS_PER_MINUTE": "0"})
    assert off.rate_limiter() is None and off.client().rate_limiter is None
    local = GitGuardianSettings.from_env({"GITGUARDIAN_API_KEY": key,
                                          "GITGUARDIAN_REQUESTS_PER_MINUTE": "120"})
    limiter = local.client().rate_limiter
    assert isinstance(limiter, RateLimiter) and limiter.requests_per_minute == 120
    shared = local.model_copy(update={"shared_rate_limit": True})
    assert isinstance(shared.rate_limiter(), RateLimiter)  # no Prefect API: local only
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
    assert isinstance(shared.client().rate_limiter, SharedRateLimiter)
    assert local.client(requests_per_minute=None).rate_limiter is None  # an override wins


@pytest.mark.parametrize("name, value", [
    ("GITGUARDIAN_REQUESTS_PER_MINUTE", "lots"),
    ("GITGUARDIAN_REQUESTS_PER_MINUTE", "-1"),
    ("GITGUARDIAN_MAX_RETRIES", "2.5"),
    ("GITGUARDIAN_RETRY_BACKOFF_CAP", "soon"),
])
def test_a_malformed_number_is_refused(name, value):
    with pytest.raises(ValueError):
        GitGuardianSettings.from_env({name: value})


def test_a_malformed_number_is_one_input_error_naming_it(monkeypatch):
    from tasks.errors import InputError
    from tasks.preflight import api_url

    monkeypatch.setenv("GITGUARDIAN_REQUESTS_PER_MINUTE", "lots")
    with pytest.raises(InputError, match="GITGUARDIAN_REQUESTS_PER_MINUTE"):
        api_url()


def test_clients_and_tasks_import_nothing_from_the_layers_above():
    above = ("deployments", "flows", "benchmarks")
    offenders = []
    for folder in ("clients", "tasks"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                              if n.split(".")[0] in above]
    assert offenders == []
