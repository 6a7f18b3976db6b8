"""Ad-hoc bulk remediation: one action, with one reason, on a filtered set of incidents.

check the request (before any request is sent) -> select (API filters, then client-side
conditions; the count is logged and shown first) -> decide
(tasks/decide/bulk_remediation.py, pure) ->
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

from tasks import enrich, fetch
from tasks.bulk_remediation import (
    date_span,
    fetch_selection,
    managers_of,
    selection_occurrences,
)
from tasks.decide.bulk_remediation import (
    PLAYBOOK,
    BulkRequest,
    check_dates_exclude,
    decide_bulk_remediation,
    render_note,
    select,
)
from tasks.decide.evidence import Evidence
from tasks.errors import one_line_errors
from tasks.playbook import Playbook
from tasks.runtime import create_markdown_artifact, get_run_logger, run_name

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
            occurrences = selection_occurrences(client, incidents)
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

        # Every listed incident: decide_bulk_remediation selects them again, and the plan keeps
        # as skips
        # those it could not check (occurrences missing, or not all of them returned).
        plan = decide_bulk_remediation(
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
    from flows.cli import command_line

    return command_line("flows.bulk_remediation", argv)
