"""Prepare a Prefect server (or Cloud workspace) for the deployments; safe to run again.

    python -m deployments.setup

- the process work pool `gitguardian-remediation` (created if missing, left alone otherwise);
- the global rate limit `gitguardian-api` sized from GITGUARDIAN_REQUESTS_PER_MINUTE (default
  200; 0 disables it), shared by every worker (see clients/ratelimit.py);
- the Secret blocks `gitguardian-api-key` from GITGUARDIAN_API_KEY, `ldap-bind-password`
  from LDAP_PASSWORD and `gitguardian-webhook-token` from GITGUARDIAN_WEBHOOK_TOKEN (the
  webhook receiver's signature token), when those are set (overwritten: this is also how a
  key is rotated);
- the automation that ends a playbook run Cancelled when nobody answered its approval in time
  (tasks/approval.py; `deployments.serve` ensures it too).

Secret values are never printed: only which block was saved from which variable.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from clients import ratelimit
from clients.gitguardian.settings import GitGuardianSettings
from deployments.config import WORK_POOL
from tasks.secrets import API_KEY_BLOCK, LDAP_PASSWORD_BLOCK

# Secret block -> the environment variable it is filled from.
SECRETS = {API_KEY_BLOCK: "GITGUARDIAN_API_KEY", LDAP_PASSWORD_BLOCK: "LDAP_PASSWORD",
           # the webhook receiver's signature token (deployments/webhooks.py)
           "gitguardian-webhook-token": "GITGUARDIAN_WEBHOOK_TOKEN"}


def ensure_work_pool(client: Any, name: str = WORK_POOL) -> str:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        pool = client.read_work_pool(name)
        return f"work pool {name!r} exists (type {pool.type})"
    except ObjectNotFound:
        pass
    client.create_work_pool(WorkPoolCreate(
        name=name, type="process",
        base_job_template=ProcessWorker.get_default_base_job_template(),
        description="GitGuardian remediation playbooks, run from a checkout by a process worker",
    ))
    return f"work pool {name!r} created (type process)"


def ensure_rate_limit(client: Any, requests_per_minute: int) -> str:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    name = ratelimit.LIMIT_NAME
    if requests_per_minute <= 0:
        # No limit wanted: an existing one is switched off, not deleted (its history stays).
        try:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active=False))
            return f"rate limit {name!r} deactivated (GITGUARDIAN_REQUESTS_PER_MINUTE=0)"
        except ObjectNotFound:
            return f"rate limit {name!r} not created (GITGUARDIAN_REQUESTS_PER_MINUTE=0)"
    slots, decay = ratelimit.sizing(requests_per_minute)
    client.upsert_global_concurrency_limit_by_name(name, slots, slot_decay_per_second=decay)
    # upsert leaves `active` as it was: a limit deactivated earlier is switched back on.
    client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active=True))
    return (f"rate limit {name!r}: {requests_per_minute} requests/minute "
            f"({slots} slots, {decay:.3f} freed per second)")


def save_secrets(
    environ: dict[str, str], save: Callable[[str, str], None] | None = None
) -> list[str]:
    """Save each Secret block whose variable is set; the messages never hold the value."""
    save = save or _save_secret
    messages = []
    for block, variable in SECRETS.items():
        value = environ.get(variable)
        if value:
            save(block, value)
            messages.append(f"Secret block {block!r} saved from {variable}")
        else:
            messages.append(f"Secret block {block!r} left as it is ({variable} not set)")
    return messages


def _save_secret(block: str, value: str) -> None:
    from prefect.blocks.system import Secret

    Secret(value=value).save(block, overwrite=True, _sync=True)


def setup(environ: dict[str, str] | None = None) -> list[str]:
    from prefect.client.orchestration import get_client

    environ = dict(os.environ if environ is None else environ)
    rpm = GitGuardianSettings.from_env(environ).requests_per_minute
    from tasks.approval import ensure_timeout_automation

    with get_client(sync_client=True) as client:
        messages = [ensure_work_pool(client), ensure_rate_limit(client, rpm)]
    return messages + [ensure_timeout_automation()] + save_secrets(environ)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.setup",
                                     description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value() or "none set (ephemeral local server)"
    print(f"Prefect API: {api}", flush=True)
    for message in setup():
        print(f"  {message}", flush=True)
    print("Next: prefect --no-prompt deploy --all, then "
          "prefect worker start --pool gitguardian-remediation (from this checkout)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
