"""Commit-author triage: give each unassigned incident to the workspace member who leaked it.

fetch (TRIGGERED incidents, their occurrences in bulk, members) -> enrich (directory: aliases
and leavers; git: .mailmap, CODEOWNERS when the policy falls back to it) -> decide
(tasks/decide/commit_author_triage.py, pure) -> act (the one write path).
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # the command line: checked before Prefect loads (flows/cli.py)
    from flows.cli import command_line

    sys.exit(command_line("flows.commit_author_triage"))

from collections import Counter
from collections.abc import Collection
from typing import Any

from prefect import flow
from prefect.utilities.annotations import quote

from tasks import enrich, fetch
from tasks.decide.commit_author_triage import (
    PLAYBOOK,
    CommitAuthorTriagePolicy,
    decide_commit_author_triage,
    render_note,
)
from tasks.decide.identity import is_bot_or_noreply, normalise_email
from tasks.decide.plan import Plan, Skip
from tasks.errors import one_line_errors
from tasks.playbook import RunOptions
from tasks.runtime import get_run_logger, run_name

SCOPES = ("incidents:read", "incidents:write", "members:read")
LEFT_TO_AUTO_IGNORE = "left_to_auto_ignore"  # the skip reason of `leave`'s incidents


@flow(name=PLAYBOOK, flow_run_name=run_name, log_prints=True)
@one_line_errors
def commit_author_triage(
    policy: CommitAuthorTriagePolicy = CommitAuthorTriagePolicy(),
    dry_run: bool = True,
    max_actions: int = 50,
    approval_timeout_hours: float = 24.0,
    incident_ids: list[int] | None = None,
) -> Any:
    """Assign unassigned incidents to the active member who authored the leak.

    Args:
        policy: How an author is matched to a member, sharing, load balancing, the note.
        dry_run: On: show the plan and write nothing (the default, unless a deployment
            sets it off, and its description then says so). Off: this run writes to
            GitGuardian; every write is re-checked, noted and recorded.
        max_actions: The most writes this run may make. A larger plan waits for approval
            when the run comes from a deployment, and fails otherwise (nothing written).
        approval_timeout_hours: How long a run started from a deployment waits, suspended,
            for a person to approve or decline a plan above max_actions (default 24 hours).
            Unanswered by then, it ends Cancelled and writes nothing.
        incident_ids: Only these incidents (a GitGuardian event's ids; read one by one).
            Empty: every unassigned incident of the workspace.
    """
    return assign_to_authors(policy, RunOptions(dry_run, max_actions, approval_timeout_hours,
                                                incident_ids))[0]


def assign_to_authors(policy: CommitAuthorTriagePolicy, options: RunOptions,
                      leave: Collection[int] = ()) -> tuple[Any, frozenset[int]]:
    """The flow's body, shared with flows/new_incidents.py: (the flow's result, the incidents
    this run decided on or wrote). A scoped run's read is `options.read` when given (shared
    with the playbook that ran before it in the same flow run); `leave`: incidents of that
    read another playbook of the flow run decided on or wrote (auto-ignore's): left out,
    shown as skipped."""
    logger = get_run_logger()
    scopes = SCOPES + (("incidents:share",) if policy.share_with_non_member_author else ())
    with options.playbook(PLAYBOOK, scopes, policy) as run:
        client = run.client
        read_at = None  # a scoped run's own read is its safety read while fresh (tasks/act.py)
        left: list[Any] = []
        if options.incident_ids is None:
            members = fetch.fetch_members(client)
            incidents = fetch.fetch_incidents(client, status="TRIGGERED")
            occurrences = fetch.fetch_occurrences(client, status="TRIGGERED")
        else:
            # The read may be older than the write path's 10 s bound by the time this run
            # writes: `apply_plan` then reads each incident again (tasks/act_writer.py).
            read = options.scoped_read()
            incidents, occurrences = read(client)
            read_at = read.read_at
            left = [i for i in incidents if i.id in leave]
            incidents = [i for i in incidents if i.status == "TRIGGERED" and i.id not in leave]
            # The member list a scoped run of the last few minutes read (tasks/fetch.py
            # SCOPED_CACHE_SECONDS); none at all when no incident is left to assign.
            members = fetch.fetch_members_cached(client) if incidents else []
        wanted = {i.id for i in incidents}
        occurrences = {i: o for i, o in occurrences.items() if i in wanted}
        logger.info(
            "%d unassigned incidents, %d occurrences",
            len(incidents),
            sum(map(len, occurrences.values())),
        )

        # .mailmap first (per repository), then the directory on the canonical addresses.
        git = enrich.git_from_settings()
        mailmap = canonical_addresses(git, occurrences, logger)
        authors = {o.author_info for occ in occurrences.values() for o in occ if o.author_info}
        directory = enrich.directory_from_settings()  # unreachable: the run ends before any write
        lookups = enrich.lookup_people(directory, authors | set(mailmap.values()))

        codeowners: dict[int, list[str]] = {}
        if policy.no_member_author == "codeowners":
            # quote(): spares Prefect two walks through every occurrence model of the input,
            # looking for upstream futures (none): 11 s for 3,500 incidents' occurrences.
            codeowners, _, problems = enrich.file_owners(git, quote(occurrences))
            for problem in problems:
                logger.warning("git: %s", problem)
        open_counts = None
        if policy.no_member_author == "least_loaded":
            open_counts = open_incidents_per_member(client, members, policy.group_emails)

        plan = decide_commit_author_triage(
            incidents,
            occurrences,
            members,
            lookups,
            mailmap,
            policy,
            codeowners=codeowners,
            open_counts=open_counts,
        )
        if left:
            plan = Plan(plan.playbook, plan.decisions, plan.skips + tuple(
                Skip(i.id, LEFT_TO_AUTO_IGNORE, "test-directory auto-ignore decided on it "
                     "earlier in this flow run") for i in left))
        result = run.execute(plan, note=render_note, incidents=incidents, read_at=read_at)
        return result, run.touched


def canonical_addresses(git: Any, occurrences: dict[int, list[Any]], logger: Any) -> dict[str, str]:
    """normalised commit e-mail -> normalised canonical e-mail, from each source's .mailmap."""
    by_source: dict[str, set[str]] = {}
    for occ in occurrences.values():
        for o in occ:
            source = getattr(getattr(o, "source", None), "full_name", None)
            if source and o.author_info and not is_bot_or_noreply(o.author_info):
                by_source.setdefault(source, set()).add(o.author_info)
    mapping: dict[str, str] = {}
    for source, emails in sorted(by_source.items()):
        try:
            found = git.mailmap(source, sorted(emails))
        except Exception as exc:  # noqa: BLE001 - a missing mirror only loses .mailmap for it
            logger.warning("git: no .mailmap for %s (%s)", source, type(exc).__name__)
            continue
        for email, canonical in found.items():
            if normalise_email(canonical) != normalise_email(email):
                mapping[normalise_email(email)] = normalise_email(canonical)
    return mapping


def open_incidents_per_member(
    client: Any, members: list[Any], group: tuple[str, ...]
) -> dict[int, int]:
    """Open incidents held by each group member: one filtered listing per member."""
    counts: Counter[int] = Counter()
    wanted = {normalise_email(e) for e in group}
    for member in members:
        if normalise_email(member.email) in wanted:
            for status in ("ASSIGNED", "TRIGGERED"):
                counts[member.id] += len(
                    fetch.fetch_incidents(client, status=status, assignee_id=member.id)
                )
    return dict(counts)


def main(argv: list[str] | None = None) -> int:
    from flows.cli import command_line

    return command_line("flows.commit_author_triage", argv)
