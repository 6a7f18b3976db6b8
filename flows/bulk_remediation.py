"""Ad-hoc bulk remediation: one action, with one reason, on a filtered set of incidents.

check the request (before any request is sent) -> select (API filters, then client-side
conditions; the count is logged and shown first) -> decide (tasks/decide/bulk.py, pure) ->
act (the one write path: dry run by default, blast radius, approval from a deployment).
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # the command line: checked before Prefect loads (flows/cli.py)
    from flows.cli import command_line

    sys.exit(command_line("flows.bulk_remediation"))

import os
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.cache_policies import NO_CACHE

from clients.directory import Status
from tasks import enrich, fetch
from tasks.decide.bulk import (
    PLAYBOOK,
    BulkRequest,
    BulkSelection,
    check_dates_exclude,
    decide_bulk,
    render_note,
    select,
)
from tasks.decide.evidence import MANAGER_LOOKUP_ERROR, Evidence, from_directory
from tasks.errors import one_line_errors
from tasks.playbook import Playbook
from tasks.progress import paged
from tasks.runtime import create_markdown_artifact, get_run_logger, run_name, task

# NO_CACHE: the inputs hold a live client, which can be neither hashed nor cached.
# The named parameter sets of prefect.yaml's unscheduled bulk deployments (kept here too so a
# test checks they validate). The e-mails and the detector are placeholders a user edits in the
# UI's "Custom run" form before running; every preset is a dry run until dry_run is unticked.
PRESETS: dict[str, dict[str, Any]] = {
    "offboard-person-now": {
        "policy": {
            "selection": {"status": ["ASSIGNED"], "assignee_emails": ["leaver@corp.example"]},
            "action": {"kind": "assign", "to_manager": True,
                       "assignee_email": "successor@corp.example"},
            "reason": "Reassigned: the assignee is leaving the company (offboarding).",
        },
        "dry_run": True,
        "max_actions": 50,
    },
    "ignore-detector-false-positive": {
        "policy": {
            "selection": {"status": ["TRIGGERED", "ASSIGNED"],
                          "detector_group_name": "generic_high_entropy_secret"},
            "action": {"kind": "ignore", "ignore_reason": "false_positive"},
            "reason": "Ignored: this detector's matches were reviewed and are false positives.",
        },
        "dry_run": True,
        "max_actions": 50,
    },
    "resolve-invalid-secrets": {
        "policy": {
            "selection": {"status": ["TRIGGERED", "ASSIGNED"], "validity": ["invalid"]},
            "action": {"kind": "resolve", "secret_revoked": True},
            "reason": "Resolved: GitGuardian's validity check says the secret no longer works.",
        },
        "dry_run": True,
        "max_actions": 50,
    },
}


@task(name="select-incidents", **fetch.FETCH)
def fetch_selection(client: Any, request: BulkRequest, members: list[Any] | None = None,
                    ) -> list[Any]:
    """Every incident the API filters select: one listing per assignee e-mail (a `member` or
    `restricted` member's on their own endpoint when `members` are known), else one."""
    seen: dict[int, Any] = {}
    for member_id, query in request.selection.listings(members):
        if member_id is None:
            pages = client.incidents(per_page=100, **query).pages()
        else:
            pages = client.member_incidents(member_id, per_page=100, **query).pages()
        for page in paged(pages, fetch.described("incidents", query), "incidents"):
            for incident in page:
                seen.setdefault(incident.id, incident)
    return list(seen.values())


def date_span(client: Any, selection: BulkSelection) -> tuple[Any, Any]:
    """The `date` of the oldest and of the newest incident the selection matches (None, None
    when it matches none): two requests of one incident each."""
    (query,) = selection.api_queries()
    ends = []
    for ordering in ("date", "-date"):
        listing = client.incidents(per_page=1, max_pages=1, ordering=ordering, **query)
        first = next(listing.pages(), [])
        ends.append(first[0].date if first else None)
    return ends[0], ends[1]


def _occurrences(client: Any, incidents: list[Any]) -> dict[int, list[Any]]:
    # A few incidents: one filtered listing each; many: one bulk sweep costs fewer requests.
    if len(incidents) <= 10:
        return fetch.fetch_occurrences_of(client, [i.id for i in incidents])
    wanted = {i.id for i in incidents}
    statuses = {i.status for i in incidents}
    grouped = fetch.fetch_occurrences(client, status=sorted(statuses))
    return {k: v for k, v in grouped.items() if k in wanted}


# No task retry, as every directory task (tasks/enrich.py): the adapter reconnects per call, and a
# failed lookup is an unknown manager, said in the decision.
@task(name="manager-of", cache_policy=NO_CACHE)
def managers_of(directory: Any, emails: list[str]) -> dict[str, Evidence[str]]:
    """Assignee e-mail -> tri-state evidence of their manager: yes (an active one's e-mail), no
    (not in the directory, no manager named, the manager left), unknown (a lookup failed)."""
    found: dict[str, Evidence[str]] = {}
    for email, lookup in enrich.lookup_people.fn(directory, emails).items():
        if lookup.status is Status.ERROR:
            found[email] = from_directory(lookup, reason=MANAGER_LOOKUP_ERROR,
                                          subject=email).retyped()
            continue
        if lookup.person is None:  # not in the directory: nobody to ask about
            found[email] = Evidence.no(f"the directory does not know {email}")
            continue
        chain = directory.manager_chain(lookup.person, depth=1)
        if not chain:
            found[email] = Evidence.no(f"the directory names no manager for {email}")
            continue
        manager = from_directory(chain[0], reason=MANAGER_LOOKUP_ERROR,
                                 subject=f"the manager of {email}")
        found[email] = (Evidence.yes(manager.value.email) if manager.is_yes
                        else manager.retyped())
    return found


def _directory_configured() -> bool:
    return bool(os.environ.get("LDAP_URL") or os.environ.get("DIRECTORY_JSON"))


def _publish_selection(request: BulkRequest, api_count: int, selected: int, unknown: int) -> str:
    text = (
        f"{api_count} incidents match the API filters; {selected} meet every condition"
        + (f"; {unknown} could not be checked (occurrences missing or not all returned)"
           if unknown else "")
    )
    create_markdown_artifact(
        key=f"{PLAYBOOK}-selection",
        markdown=(
            f"# Bulk remediation: selection\n\n{text}.\n\n"
            f"Action: **{request.action.kind}**\n\n"
            "Selection:\n\n```json\n"
            f"{request.selection.model_dump_json(indent=2, exclude_defaults=True)}\n```\n"
        ),
        description=text,
    )
    return text


@flow(name=PLAYBOOK, flow_run_name=run_name, log_prints=True)
@one_line_errors
def bulk_remediation(
    policy: BulkRequest,
    dry_run: bool = True,
    max_actions: int = 50,
    approval_timeout_hours: float = 24.0,
) -> Any:
    """Apply one action, with its reason as a note, to every incident a selection matches.

    Args:
        policy: The selection, the action and the reason.
        dry_run: On: show the plan and write nothing (the default, unless a deployment
            sets it off, and its description then says so). Off: this run writes to
            GitGuardian; every write is re-checked, noted and recorded.
        max_actions: The most writes this run may make. A larger plan waits for approval
            when the run comes from a deployment, and fails otherwise (nothing written).
        approval_timeout_hours: How long a run started from a deployment waits, suspended,
            for a person to approve or decline a plan above max_actions (default 24 hours).
            Unanswered by then, it ends Cancelled and writes nothing.
    """
    logger = get_run_logger()
    # Entering checks the request (tasks/preflight.py), before the client is built or any
    # request is sent.
    with Playbook(
        PLAYBOOK,
        scopes=policy.action.scopes,
        dry_run=dry_run,
        max_actions=max_actions,
        parameters={"policy": policy.model_dump(mode="json")},
        policy=policy,
        approval_timeout_hours=approval_timeout_hours,
    ) as run:
        client = run.client
        now = datetime.now(UTC)
        if not policy.confirm_all and policy.selection.narrowed_by_dates_only(now):
            # Only date bounds narrow the selection: refused when this workspace has no
            # incident outside them, before the selection is listed.
            oldest, newest = date_span(client, policy.selection.undated())
            check_dates_exclude(policy, oldest, newest, now=now)
        members: list[Any] | None = None
        if policy.action.kind == "assign":
            # Listed now rather than after the selection: the assignment needs them, and they
            # let a person's incidents be listed on their own member endpoint.
            members = fetch.fetch_members(client)
        incidents = fetch_selection(client, policy, members)
        logger.info("%d incidents match the API filters", len(incidents))
        occurrences: dict[int, list[Any]] = {}
        if policy.selection.needs_occurrences and incidents:
            occurrences = _occurrences(client, incidents)
        selected, unknown = select(incidents, occurrences, policy.selection, now=now)
        logger.info(_publish_selection(policy, len(incidents), len(selected), len(unknown)))

        managers: dict[str, Evidence[str]] = {}
        if policy.action.kind == "assign" and selected:
            if policy.action.to_manager:
                if _directory_configured():
                    # An unreachable directory raises here: the run ends before any write.
                    emails = sorted({i.assignee_email for i in selected if i.assignee_email})
                    managers = managers_of(enrich.directory_from_settings(), emails)
                else:
                    logger.warning("no directory configured: incidents go to the named successor")

        # Every listed incident: decide_bulk selects them again, and the plan keeps as skips
        # those it could not check (occurrences missing, or not all of them returned).
        plan = decide_bulk(
            incidents, occurrences, policy, now=now, managers=managers, members=members
        )
        emails = {m.id: m.email for m in members or ()}
        return run.execute(
            plan,
            note=lambda d: render_note(d, policy),
            incidents=incidents,
            read_filters=policy.selection.read_filters(),
            emails=emails,
        )


def main(argv: list[str] | None = None) -> int:
    from flows.cli import main as cli_main

    return cli_main(
        bulk_remediation,
        BulkRequest,
        prog="python -m flows.bulk_remediation",
        description=bulk_remediation.__doc__.splitlines()[0],
        argv=argv,
    )
