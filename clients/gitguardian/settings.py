"""The GitGuardian side's settings, read in one place: `GitGuardianSettings.from_env()`.

| variable | field | default |
|---|---|---|
| GITGUARDIAN_API_URL | base_url | https://api.gitguardian.com |
| GITGUARDIAN_API_KEY | api_key (SecretStr: never in repr, dumps, logs) | none |
| GITGUARDIAN_REQUESTS_PER_MINUTE | requests_per_minute (0: no client-side limit) | 200 |
| GITGUARDIAN_SHARED_RATE_LIMIT | shared_rate_limit (1/true/yes: the Prefect server's limit) | off |
| GITGUARDIAN_MAX_RETRIES | max_retries (retries after the first try) | 3 |
| GITGUARDIAN_RETRY_BACKOFF_CAP | retry_backoff_cap (longest backoff, seconds) | 30 (policy) |

Plain Python: the Prefect Secret block holding the key is read by the task layer
(`tasks/settings.py`), which passes the key in as an override.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer

from clients.gitguardian.client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUESTS_PER_MINUTE,
    GitGuardianClient,
)
from clients.retry import RetryPolicy

TRUE = ("1", "true", "yes")


class GitGuardianSettings(BaseModel):
    """URL, key, rate, retries and which limiter: everything a client is built from."""

    model_config = ConfigDict(frozen=True)

    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr = Field(default=SecretStr(""), repr=False)
    requests_per_minute: int = Field(default=DEFAULT_REQUESTS_PER_MINUTE, ge=0)
    shared_rate_limit: bool = False
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0)
    retry_backoff_cap: float | None = Field(default=None, ge=0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 **overrides: Any) -> GitGuardianSettings:
        """The GITGUARDIAN_* variables (see the module's table); `overrides` win (e.g. the key
        from a Secret block). A malformed number raises ValueError naming the variable only."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "base_url": env.get("GITGUARDIAN_API_URL") or DEFAULT_BASE_URL,
            "api_key": SecretStr(env.get("GITGUARDIAN_API_KEY") or ""),
            "requests_per_minute": _number(env, "GITGUARDIAN_REQUESTS_PER_MINUTE", int,
                                           DEFAULT_REQUESTS_PER_MINUTE),
            "shared_rate_limit": env.get("GITGUARDIAN_SHARED_RATE_LIMIT", "").strip().lower()
            in TRUE,
            "max_retries": _number(env, "GITGUARDIAN_MAX_RETRIES", int, DEFAULT_MAX_RETRIES),
            "retry_backoff_cap": _number(env, "GITGUARDIAN_RETRY_BACKOFF_CAP", float, None),
        }
        if isinstance(overrides.get("api_key"), str):
            overrides["api_key"] = SecretStr(overrides["api_key"])
        return cls(**{**values, **overrides})

    @field_serializer("api_key", when_used="always")
    def _mask_key(self, value: object) -> str:
        return "**********" if value else ""

    def key_value(self) -> str:
        return self.api_key.get_secret_value()

    def retry_policy(self) -> RetryPolicy:
        """`max_retries` retries; the backoff capped at `retry_backoff_cap` when it is set
        (fault-injection tests and benchmarks; a server's Retry-After is still honoured)."""
        if self.retry_backoff_cap is None:
            return RetryPolicy(max_attempts=self.max_retries + 1)
        cap = self.retry_backoff_cap
        return RetryPolicy(max_attempts=self.max_retries + 1, base_delay=min(1.0, cap),
                           max_delay=cap)

    def rate_limiter(self) -> Any:
        """None (no limit), the shared limit (opted in, with a Prefect API), else a local one."""
        from clients.ratelimit import RateLimiter, shared_limiter

        if not self.requests_per_minute:
            return None
        if self.shared_rate_limit:
            return shared_limiter(self.requests_per_minute)
        return RateLimiter(self.requests_per_minute)

    def client(self, **overrides: Any) -> GitGuardianClient:
        """A client from these settings; `overrides` are the client's own keyword arguments.
        Raises ValueError (never quoting the key) on a bad URL or an empty key."""
        options: dict[str, Any] = {
            "requests_per_minute": self.requests_per_minute or None,
            "rate_limiter": self.rate_limiter(),
            "retry": self.retry_policy(),
        }
        if "max_retries" in overrides and "retry" not in overrides:
            options.pop("retry")
        if "requests_per_minute" in overrides and "rate_limiter" not in overrides:
            options.pop("rate_limiter")
        options.update(overrides)
        return GitGuardianClient(self.base_url, self.key_value(), **options)


def client_from_env(**kwargs: Any) -> GitGuardianClient:
    """A client from `GitGuardianSettings.from_env()` (GITGUARDIAN_API_URL, default the US SaaS,
    GITGUARDIAN_API_KEY, the rate and the retries); `kwargs` override the client's own. Here,
    not on the client, so that the client never imports its settings back."""
    settings = GitGuardianSettings.from_env()
    if not settings.key_value():
        raise ValueError("GITGUARDIAN_API_KEY is not set")
    return settings.client(**kwargs)


def _number(env: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name} must be a {'whole ' if kind is int else ''}number") from None
