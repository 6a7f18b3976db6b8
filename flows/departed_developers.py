"""Departed-developer reassignment: open incidents held by people who left go to one who can act.

fetch (members, assigned incidents) -> enrich (directory: who left, their managers; git: who
owns the leaking file) -> decide (tasks/decide/departed_developers.py, pure) -> act (the one
write path).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":  # the command line: checked before Prefect loads (flows/cli.py)
    from flows.cli import command_line

    sys.exit(command_line("flows.departed_developers"))

import time
from typing import Any

from prefect import flow
from prefect.utilities.annotations import quote

from tasks import enrich, fetch
from tasks.decide.departed_developers import (
    DepartedDevelopersPolicy,
    decide_departed_developers,
    render_note,
)
from tasks.errors import one_line_errors
from tasks.playbook import Playbook
from tasks.runtime import get_run_logger, run_name

PLAYBOOK = "departed-developer-reassignment"
SCOPES = ("incidents:read", "incidents:write", "members:read")


@flow(name=PLAYBOOK, flow_run_name=run_name, log_prints=True)
@one_line_errors
def departed_developers(
    policy: DepartedDevelopersPolicy = DepartedDevelopersPolicy(),
    dry_run: bool = True,
    max_actions: int = 50,
    approval_timeout_hours: float = 24.0,
    incident_ids: list[int] | None = None,
) -> Any:
    """Reassign open incidents whose assignee left the company (per the directory's leaver rules).

    Args:
        policy: Who counts as departed, who takes an incident over, the note.
        dry_run: On: show the plan and write nothing (the default, unless a deployment
            sets it off, and its description then says so). Off: this run writes to
            GitGuardian; every write is re-checked, noted and recorded.
        max_actions: The most writes this run may make. A larger plan waits for approval
            when the run comes from a deployment, and fails otherwise (nothing written).
        approval_timeout_hours: How long a run started from a deployment waits, suspended,
            for a person to approve or decline a plan above max_actions (default 24 hours).
            Unanswered by then, it ends Cancelled and writes nothing.
        incident_ids: Only these incidents (a GitGuardian event's ids; read one by one).
            Empty: every open incident of the workspace.
    """
    logger = get_run_logger()
    with Playbook(
        PLAYBOOK,
        scopes=SCOPES,
        dry_run=dry_run,
        max_actions=max_actions,
        parameters={"policy": policy.model_dump(mode="json"), "incident_ids": incident_ids},
        policy=policy,
        approval_timeout_hours=approval_timeout_hours,
    ) as run:
        client = run.client
        # A scoped run (an event's ids) takes the list a scoped run of the last few minutes
        # read (tasks/fetch.py SCOPED_CACHE_SECONDS); a sweep reads it.
        members = (fetch.fetch_members(client) if incident_ids is None
                   else fetch.fetch_members_cached(client))
        occurrences: dict[int, list[Any]] = {}
        prefetched: dict[int, list[Any]] = {}  # a scoped run read them with each incident
        read_at = None  # a scoped run's own read is its safety read while fresh (tasks/act.py)
        if incident_ids is None:
            incidents = fetch.fetch_incidents(client, status="ASSIGNED")
            if policy.include_unassigned:
                incidents += fetch.fetch_incidents(client, status="TRIGGERED")
                occurrences = fetch.fetch_occurrences(client, status="TRIGGERED")
        else:
            statuses = ("ASSIGNED", "TRIGGERED") if policy.include_unassigned else ("ASSIGNED",)
            read_at = time.monotonic()
            incidents, prefetched = fetch.fetch_incidents_by_id(client, incident_ids)
            incidents = [i for i in incidents if i.status in statuses]
            occurrences = {
                i.id: prefetched.get(i.id, []) for i in incidents if i.status == "TRIGGERED"
            }
        logger.info("%d open incidents to look at", len(incidents))

        # A directory that cannot be reached raises here: the run ends before any write.
        directory = enrich.directory_from_settings()
        emails = {i.assignee_email for i in incidents if i.assignee_email}
        emails |= {o.author_info for occ in occurrences.values() for o in occ if o.author_info}
        lookups = enrich.lookup_people(directory, emails)
        # quote(): else Prefect walks every object of a large task input, twice, looking for
        # upstream futures (there are none): 0.1-0.3 s here, seconds for thousands of models.
        managers = enrich.manager_chains(directory, quote(lookups), policy.manager_depth)

        # Leaking-file owners are only needed where no manager can take the incident over.
        owners: dict[int, list[str]] = {}
        committers: dict[int, list[str]] = {}
        if policy.use_codeowners or policy.use_recent_committers:
            first = decide_departed_developers(
                incidents,
                directory=lookups,
                managers=managers,
                members=members,
                occurrences_by_incident=occurrences,
                codeowners={},
                recent_committers={},
                policy=policy.model_copy(
                    update={
                        "use_codeowners": False,
                        "use_recent_committers": False,
                        "fallback_email": None,
                    }
                ),
            )
            orphans = [s.incident_id for s in first.skips if s.reason == "no_successor"]
            if orphans:
                missing = [i for i in orphans if i not in occurrences]
                occurrences.update({i: prefetched[i] for i in missing if i in prefetched})
                missing = [i for i in missing if i not in prefetched]
                if missing or not prefetched:
                    occurrences.update(fetch.fetch_occurrences_of(client, missing))
                owners, committers, problems = enrich.file_owners(
                    enrich.git_from_settings(), quote({i: occurrences.get(i, []) for i in orphans})
                )
                for problem in problems:
                    logger.warning("git: %s", problem)
                # Owners and committers are names found in repositories: only someone the
                # directory knows as active may inherit an incident (one more batched lookup).
                # The directory failing now makes those lookups unknown: their incidents are
                # skipped with the reason, the decisions already known still stand.
                found = {
                    a
                    for listing in (*owners.values(), *committers.values())
                    for a in (listing.value or ())
                }
                lookups = {
                    **lookups,
                    **enrich.lookup_people(directory, found - set(lookups), mid_run=True),
                }

        plan = decide_departed_developers(
            incidents,
            directory=lookups,
            managers=managers,
            members=members,
            occurrences_by_incident=occurrences,
            codeowners=owners,
            recent_committers=committers,
            policy=policy,
        )
        return run.execute(plan, note=lambda d: render_note(d, policy), incidents=incidents,
                           read_at=read_at)


def main(argv: list[str] | None = None) -> int:
    from flows.cli import command_line

    return command_line("flows.departed_developers", argv)
