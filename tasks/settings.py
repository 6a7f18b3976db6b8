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
    """A run's client: `GitGuardianSettings.from_env()` (URL, rate, retries, shared limiter),
    with the key from the Secret block when it exists. InputError naming the variable or the
    Secret block: a missing or malformed key, URL or number."""
    from pydantic import SecretStr

    from tasks import preflight

    base_url, api_key = preflight.api_url(), preflight.api_key()
    gitguardian = preflight.gitguardian_settings().model_copy(
        update={"base_url": base_url, "api_key": SecretStr(api_key)})
    return gitguardian.client(**overrides)


def ledger():
    from clients.ledger import Ledger

    return Ledger(os.environ.get("LEDGER_URL") or None)
