"""Run every deployment of prefect.yaml, with its schedule, in this one process (no worker).

    python -m deployments.serve            # from the checkout; Ctrl-C stops it
    python -m deployments.serve --list     # show what would be served, and exit

Before serving, the GitGuardian key is checked once (a missing or refused key: exit 2, said in
one line), and its description cached for the runs (tasks/fetch.py `token_info_cached`).

For a single small machine: a Prefect server (or Prefect Cloud) still records the runs and
shows the UI, but no work pool or worker is needed. Schedules, parameters, tags, descriptions
and concurrency limits are read from prefect.yaml, so both ways of running stay the same.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deployments import config


def build(path: Path = config.PREFECT_YAML) -> list[Any]:
    """A RunnerDeployment for each prefect.yaml deployment (nothing is sent to the server)."""
    from prefect.schedules import Cron

    built = []
    for spec in config.load(path):
        triggers = [deployment_trigger(t) for t in spec.triggers]
        flow = spec.load_flow()
        built.append(flow.to_deployment(
            name=spec.name,
            description=spec.description or None,
            tags=list(spec.tags),
            parameters=dict(spec.parameters),
            schedules=[Cron(s.cron, timezone=s.timezone, active=s.active) for s in spec.schedules],
            concurrency_limit=spec.concurrency_limit,
            triggers=triggers,
        ))
    return built


def deployment_trigger(raw: dict[str, Any]) -> Any:
    """A prefect.yaml trigger as the model `prefect deploy` builds from it."""
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    return TypeAdapter(DeploymentTriggerTypes).validate_python(raw)


def check_key() -> str:
    """The GitGuardian key, checked once before serving, through the task the runs use
    (tasks/fetch.py `token_info_cached`): the first event's run then finds the token's
    description cached. No key, or a key GitGuardian refuses: InputError, and serve does not
    start. GitGuardian unreachable: said, and serve starts (each run checks the key again)."""
    from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

    from tasks import fetch, preflight, settings

    client = settings.gitguardian_client()
    try:
        # A task run outside any flow run: its log lines stay in this console.
        with temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}):
            token = preflight.check_token(client, (),
                                          read=lambda: fetch.token_info_cached(client))
    except preflight.ApiUnavailable as exc:
        return f"GitGuardian API key not checked (each run checks it): {exc}"
    scopes = ", ".join(sorted(getattr(token, "scopes", None) or ())) or "none"
    return (f"GitGuardian API key accepted by {client.base_url} (scopes: {scopes}); its "
            "description is cached for the runs (GG_TOKEN_CACHE_SECONDS)")


def describe(deployment: Any) -> str:
    schedules = ", ".join(
        f"{s.schedule.cron} {s.schedule.timezone}" for s in deployment.schedules or []
    ) or "no schedule (ad hoc)"
    name = f"{deployment.flow_name}/{deployment.name}"
    events = sorted({e for t in deployment.triggers or [] for e in getattr(t, "expect", ())})
    on = f"; on events {', '.join(events)}" if events else ""
    return f"{name}: {schedules}{on}; parameters {deployment.parameters}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the deployments and exit")
    parser.add_argument("--file", type=Path, default=config.PREFECT_YAML,
                        help="the prefect.yaml to read (default: the checkout's)")
    args = parser.parse_args(argv)
    deployments = build(args.file)
    for deployment in deployments:
        print(describe(deployment), flush=True)
    if args.list:
        return 0
    from prefect import serve

    from tasks.approval import ensure_timeout_automation
    from tasks.errors import InputError

    try:
        print(check_key(), flush=True)
    except InputError as exc:
        print(f"error: {exc}; not serving", file=sys.stderr, flush=True)
        return 2

    # A run suspended for approval and not answered in time ends Cancelled, not Failed.
    print(ensure_timeout_automation(), flush=True)
    serve(*deployments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
