"""Secrets a run reads: a Prefect Secret block when it exists, else an environment variable.

The lowest piece of the task layer's settings: tasks/preflight.py checks secrets through it
before a run, tasks/settings.py builds the adapters after (so neither imports the other back).
"""
from __future__ import annotations

import logging
import os

logger = logging.getLogger("tasks.settings")  # the messages say where a secret came from

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
