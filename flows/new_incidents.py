"""New incidents (a GitGuardian event's ids): test-directory auto-ignore, then commit-author
triage, in one flow run on one read of those incidents.

Started by the `gitguardian.incident.triggered` / `new_occurrence` events (prefect.yaml: the
deployment `new-incidents/on-events`). The ids are read once (one GET each, with their
occurrences: tasks/fetch.py `ScopedRead`); then each playbook runs as its own flow does
(flows/auto_ignore.py `ignore_test_paths`, flows/commit_author_triage.py `assign_to_authors`):
its own scope check, ledger run, lease, plan and outcome artifacts, approval above
`max_actions`, dry run, and the decisions of its pure decide function.

1. Auto-ignore first: a test credential is ignored (and its recheck reopens what it ignored
   earlier and no longer should be).
2. Triage then, on the incidents of the read that auto-ignore decided nothing about and wrote
   nothing to: an ignored test credential is never assigned to its author. The read serves
   triage's writes as their safety read only while it is at most 10 s old (tasks/act.py);
   older, each incident is read again before its write.

Auto-ignore failing (an error, a declined approval) ends the run there: triage does not run on
incidents auto-ignore may still have to ignore; its hourly sweep picks them up.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.states import Failed

from flows.auto_ignore import ignore_test_paths
from flows.commit_author_triage import assign_to_authors
from tasks import fetch
from tasks.decide.auto_ignore import PLAYBOOK as AUTO_IGNORE
from tasks.decide.auto_ignore import AutoIgnorePolicy
from tasks.decide.commit_author_triage import PLAYBOOK as TRIAGE
from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy
from tasks.errors import one_line_errors
from tasks.playbook import RunOptions
from tasks.runtime import run_name

FLOW = "new-incidents"


@flow(name=FLOW, flow_run_name=run_name, log_prints=True)
@one_line_errors
def new_incidents(
    incident_ids: list[int],
    auto_ignore_policy: AutoIgnorePolicy = AutoIgnorePolicy(),
    triage_policy: CommitAuthorTriagePolicy = CommitAuthorTriagePolicy(),
    dry_run: bool = True,
    max_actions: int = 50,
    approval_timeout_hours: float = 24.0,
) -> Any:
    """Ignore the test credentials among new incidents, then assign the others to their author.

    Args:
        incident_ids: The incidents to handle (a GitGuardian event's ids), read once (one
            request each) for both playbooks.
        auto_ignore_policy: Test-directory auto-ignore's policy: what a test path is, which
            validities qualify, the veto tags, the note.
        triage_policy: Commit-author triage's policy: how an author is matched to a member,
            sharing, load balancing, the note.
        dry_run: On: show both plans and write nothing (the default, unless a deployment
            sets it off, and its description then says so). Off: this run writes to
            GitGuardian; every write is re-checked, noted and recorded.
        max_actions: The most writes each playbook may make in this run. A larger plan waits
            for approval when the run comes from a deployment, and fails otherwise (nothing
            written).
        approval_timeout_hours: How long a run started from a deployment waits, suspended,
            for a person to approve or decline a plan above max_actions (default 24 hours).
            Unanswered by then, it ends Cancelled and writes nothing.
    """
    ids = list(incident_ids)
    options = RunOptions(dry_run, max_actions, approval_timeout_hours, ids, fetch.ScopedRead(ids))
    # Each playbook asks for, and reads, its own approval (one pause key each).
    ignored, touched = ignore_test_paths(
        auto_ignore_policy, replace(options, approval_key=f"approval-{AUTO_IGNORE}"))
    triaged, _ = assign_to_authors(
        triage_policy, replace(options, approval_key=f"approval-{TRIAGE}"), leave=touched)
    return combined({AUTO_IGNORE: ignored, TRIAGE: triaged})


def combined(results: dict[str, Any]) -> Any:
    """The playbooks' results side by side; Failed (carrying them) when one of them failed."""
    data = {name: (r.data if isinstance(r, State) else r) for name, r in results.items()}
    failed = [f"{name}: {r.message}" for name, r in results.items() if isinstance(r, State)]
    if failed:
        return Failed(message="; ".join(failed), data=data)
    return data
