"""Where the task layer gets its adapters: API key and LDAP password from Prefect Secret blocks,
falling back to environment variables. The clients themselves take plain values.
"""
from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

API_KEY_BLOCK = "gitguardian-api-key"
LDAP_PASSWORD_BLOCK = "ldap-bind-password"


def secret_value(block_name: str, env_name: str) -> str | None:
    """The Secret block's value when the block exists, else the environment variable.

    `Secret.load()` raises ValueError when the block is missing; without a reachable Prefect
    API it raises other errors: both mean "use the environment". In `runtime.plain()`: the
    environment only.
    """
    from tasks import runtime

    if runtime.is_plain():
        return os.environ.get(env_name) or None
    try:
        from prefect.blocks.system import Secret

        return Secret.load(block_name, _sync=True).get()
    except Exception as exc:  # noqa: BLE001 - any failure falls back, and says which kind
        logger.debug(
            "Secret block %r not used (%s); reading %s", block_name, type(exc).__name__, env_name
        )
    return os.environ.get(env_name) or None


def gitguardian_client(**overrides):
    from clients.gitguardian import GitGuardianClient
    from tasks import preflight

    # InputError naming the variable or the Secret block: a missing or malformed key or URL.
    base_url, api_key = preflight.api_url(), preflight.api_key()
    from deployments.ratelimit import requests_per_minute_from_env, shared_limiter

    rpm = requests_per_minute_from_env()
    options: dict = {"requests_per_minute": rpm or None}  # 0: no client-side limit
    # Several workers on one token: opt in to the Prefect server's shared limit (one slot per
    # request, created by `python -m deployments.setup`); otherwise each process keeps its own.
    if rpm and os.environ.get("GITGUARDIAN_SHARED_RATE_LIMIT", "").strip().lower() in (
        "1",
        "true",
        "yes",
    ):
        options["rate_limiter"] = shared_limiter(rpm)
    options.update(_retry_options())
    options.update(overrides)
    return GitGuardianClient(base_url, api_key, **options)


def _retry_options() -> dict:
    """GITGUARDIAN_MAX_RETRIES (retries after the first try) and GITGUARDIAN_RETRY_BACKOFF_CAP
    (the longest backoff in seconds between tries). Fault-injection tests and benchmarks shorten
    the backoff so a run under 10% server errors does not sleep for minutes; a server's
    Retry-After is still honoured.
    """
    from clients.gitguardian import DEFAULT_MAX_RETRIES
    from clients.retry import RetryPolicy

    retries_text = os.environ.get("GITGUARDIAN_MAX_RETRIES")
    cap_text = os.environ.get("GITGUARDIAN_RETRY_BACKOFF_CAP")
    if not retries_text and not cap_text:
        return {}
    retries = int(retries_text) if retries_text else DEFAULT_MAX_RETRIES
    if not cap_text:
        return {"max_retries": retries}
    cap = float(cap_text)
    return {"retry": RetryPolicy(max_attempts=retries + 1, base_delay=min(1.0, cap), max_delay=cap)}


def ledger():
    from clients.ledger import Ledger

    return Ledger(os.environ.get("LEDGER_URL") or None)
