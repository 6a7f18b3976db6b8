"""Test-directory auto-ignore: ignore open incidents whose every occurrence sits in a test path,
and reopen what it ignored earlier once that stops being true.

fetch (open incidents of the allowed validities, their occurrences in bulk) -> decide
(tasks/decide/auto_ignore.py, pure) -> act (the one write path). The recheck step reads
from the ledger which incidents this playbook ignored, because GitGuardian never reopens an
ignored incident by itself.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # the command line: checked before Prefect loads (flows/cli.py)
    from flows.cli import command_line

    sys.exit(command_line("flows.auto_ignore"))

from typing import Any

from prefect import flow

from clients.models import OPEN_STATUSES
from tasks import fetch
from tasks.decide.auto_ignore import (
    PLAYBOOK,
    AutoIgnorePolicy,
    decide_auto_ignore,
    decide_recheck,
    render_note,
)
from tasks.errors import one_line_errors
from tasks.playbook import RunOptions
from tasks.runtime import get_run_logger, run_name

SCOPES = ("incidents:read", "incidents:write")
FEW = 50  # below this many incidents, per-incident occurrence listings beat a bulk sweep


@flow(name=PLAYBOOK, flow_run_name=run_name, log_prints=True)
@one_line_errors
def auto_ignore(
    policy: AutoIgnorePolicy = AutoIgnorePolicy(),
    dry_run: bool = True,
    max_actions: int = 50,
    approval_timeout_hours: float = 24.0,
    incident_ids: list[int] | None = None,
) -> Any:
    """Ignore (as test_credential) open incidents whose every occurrence is in a test path.

    Args:
        policy: What a test path is, which validities qualify, the veto tags, the note.
        dry_run: On: show the plan and write nothing (the default, unless a deployment
            sets it off, and its description then says so). Off: this run writes to
            GitGuardian; every write is re-checked, noted and recorded.
        max_actions: The most writes this run may make. A larger plan waits for approval
            when the run comes from a deployment, and fails otherwise (nothing written).
        approval_timeout_hours: How long a run started from a deployment waits, suspended,
            for a person to approve or decline a plan above max_actions (default 24 hours).
            Unanswered by then, it ends Cancelled and writes nothing.
        incident_ids: Only these incidents (a GitGuardian event's ids; read one by one), for
            the ignore and the recheck alike. Empty: every open incident of the workspace.
    """
    return ignore_test_paths(policy, RunOptions(dry_run, max_actions, approval_timeout_hours,
                                                incident_ids))[0]


def ignore_test_paths(policy: AutoIgnorePolicy, options: RunOptions
                      ) -> tuple[Any, frozenset[int]]:
    """The flow's body, shared with flows/new_incidents.py: (the flow's result, the incidents
    this run decided on or wrote). A scoped run's read is `options.read` when given (made when
    first asked for, and shared with the playbook that runs next)."""
    logger = get_run_logger()
    incident_ids = options.incident_ids
    with options.playbook(PLAYBOOK, SCOPES, policy) as run:
        client = run.client
        # One listing per status and validity: multi-value filters are not confirmed on the
        # incidents endpoint. Incidents with a veto tag are excluded server-side (and re-checked
        # by decide); occurrences are not: an occurrence dropped by the server's filter could not
        # be told from one never returned, so decide counts them all and vetoes them itself.
        incidents: list[Any] = []
        occurrences: dict[int, list[Any]] = {}
        scoped: tuple[list[Any], dict[int, list[Any]]] | None = None
        read_at = None  # a scoped run's own read is its safety read while fresh (tasks/act.py)
        if incident_ids is None:
            for status in OPEN_STATUSES:
                for validity in policy.validities:
                    filters = dict(status=status, validity=validity)
                    incidents += fetch.fetch_incidents(
                        client, **filters, exclude_tags=list(policy.veto_tags))
                    for incident_id, found in fetch.fetch_occurrences(client, **filters).items():
                        occurrences.setdefault(incident_id, []).extend(found)
        else:
            # The same selection as the listings' filters, applied to the incidents read.
            read = options.scoped_read()
            scoped = read(client)
            read_at = read.read_at
            veto = set(policy.veto_tags)
            incidents = [i for i in scoped[0] if i.status in OPEN_STATUSES
                         and i.validity in policy.validities and not veto & set(i.tags or ())]
            occurrences = scoped[1]
        wanted = {i.id for i in incidents}
        occurrences = {i: o for i, o in occurrences.items() if i in wanted}
        logger.info(
            "%d candidate incidents, %d occurrences",
            len(incidents),
            sum(map(len, occurrences.values())),
        )
        plan = decide_auto_ignore(incidents, occurrences, policy)

        if policy.recheck:
            plan = plan.merged(
                recheck(
                    client,
                    run.ledger,
                    policy,
                    token_id=getattr(run.token, "id", None),
                    scoped=scoped,
                )
            )
        result = run.execute(
            plan,
            note=render_note,
            incidents=incidents,
            read_filters={
                "validity": list(policy.validities),
                "exclude_tags": list(policy.veto_tags),
            },
            read_at=read_at,
        )
        return result, run.touched


def recheck(
    client: Any,
    ledger: Any,
    policy: AutoIgnorePolicy,
    token_id: str | None = None,
    scoped: tuple[list[Any], dict[int, list[Any]]] | None = None,
):
    """Incidents this playbook ignored (per the ledger) that are still ignored, re-judged.

    Only an ignore our token made is ever reopened: one a person made since is theirs.
    `scoped`: the incidents (and occurrences) a scoped run read; only those are re-judged."""
    ignored_by_us = {a.incident_id for a in ledger.applied(PLAYBOOK, action="ignore")}
    if scoped is not None:
        ignored_by_us &= {i.id for i in scoped[0]}
    if not ignored_by_us:
        return decide_recheck([], {}, {}, policy)
    if scoped is not None:
        found = {i.id: i for i in scoped[0] if i.id in ignored_by_us and i.status == "IGNORED"}
        return decide_recheck(
            ignored_by_us,
            found,
            {i: scoped[1].get(i, []) for i in found},
            policy,
            token_id=token_id,
        )
    incidents = {
        i.id: i for i in fetch.fetch_incidents(client, status="IGNORED") if i.id in ignored_by_us
    }
    ids = sorted(incidents)
    if len(ids) <= FEW:
        occurrences = fetch.fetch_occurrences_of(client, ids)
    else:
        occurrences = fetch.fetch_occurrences(client, status="IGNORED")
    return decide_recheck(ignored_by_us, incidents, occurrences, policy, token_id=token_id)


def main(argv: list[str] | None = None) -> int:
    from flows.cli import command_line

    return command_line("flows.auto_ignore", argv)
