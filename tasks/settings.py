"""Where the task layer gets its adapters: API key and LDAP password from Prefect Secret blocks,
falling back to environment variables (tasks/secrets.py), checked as the preflight checks them
(tasks/preflight.py). The clients themselves take plain values.
"""
from __future__ import annotations

import os

from tasks import preflight

# Re-exported: the Secret blocks' names and their reader live in tasks/secrets.py.
from tasks.secrets import API_KEY_BLOCK, LDAP_PASSWORD_BLOCK, secret_value

__all__ = ["API_KEY_BLOCK", "LDAP_PASSWORD_BLOCK", "gitguardian_client", "ledger", "secret_value"]


def gitguardian_client(**overrides):
    """A run's client: `GitGuardianSettings.from_env()` (URL, rate, retries, shared limiter),
    with the key from the Secret block when it exists. InputError naming the variable or the
    Secret block: a missing or malformed key, URL or number."""
    from pydantic import SecretStr

    base_url, api_key = preflight.api_url(), preflight.api_key()
    gitguardian = preflight.gitguardian_settings().model_copy(
        update={"base_url": base_url, "api_key": SecretStr(api_key)})
    return gitguardian.client(**overrides)


def ledger():
    from clients.ledger import Ledger

    return Ledger(os.environ.get("LEDGER_URL") or None)
