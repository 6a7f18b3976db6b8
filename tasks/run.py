"""Prefect glue every playbook shares: record the plan, show it, enforce the blast radius, apply it
in chunks through the one write path (tasks/act.py), show the outcomes, end Failed on a failure.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from tasks import act
from tasks.decide.paths import printable
from tasks.plan import Decision, Outcome, Plan

CHUNK = 50  # decisions per Prefect task run: a task run costs 2-4 ms, a write about 50-300 ms


@dataclass
class RunReport:
    playbook: str
    dry_run: bool
    plan: Plan
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(o.result.value for o in self.outcomes))

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing to do"
        mode = "dry run" if self.dry_run else "run"
        return (
            f"{self.playbook} {mode}: {len(self.plan)} planned, {len(self.plan.skips)} skipped; "
            f"{counts}"
        )


def _artifact_key(playbook: str, what: str) -> str:
    return f"{playbook}-{what}".lower()


def publish_plan(plan: Plan, *, dry_run: bool) -> None:
    rows = [d.row() for d in plan.decisions] or [{"incident_id": None, "action": "none"}]
    create_table_artifact(
        key=_artifact_key(plan.playbook, "plan"),
        table=rows,
        description=f"{plan.playbook}: {len(plan)} decisions ({'dry run' if dry_run else 'to apply'})",
    )
    if plan.skips:
        skipped = Counter(s.reason for s in plan.skips)
        create_table_artifact(
            key=_artifact_key(plan.playbook, "skipped"),
            table=[{"reason": r, "incidents": n} for r, n in skipped.most_common()],
            description=f"{plan.playbook}: incidents looked at and left, by reason",
        )


def publish_outcomes(report: RunReport) -> None:
    rows = [o.row() for o in report.outcomes] or [{"incident_id": None, "result": "none"}]
    create_table_artifact(
        key=_artifact_key(report.playbook, "outcomes"),
        table=rows,
        description=report.summary(),
    )
    lines = [f"# {report.playbook}", "", report.summary(), ""]
    if report.failed:
        lines += ["## Failed", ""] + [
            f"- incident {o.decision.incident_id}: {o.decision.action.value}: {_md(o.detail)}"
            for o in report.failed
        ]
    create_markdown_artifact(key=_artifact_key(report.playbook, "summary"), markdown="\n".join(lines))


def _md(text: str) -> str:
    """Values from GitGuardian may hold Markdown or HTML: show them as text."""
    out = text.replace("\\", "\\\\")
    for ch in "`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    # Control and format characters (ESC, NUL, right-to-left overrides) shown as escapes: they
    # could hide or reorder what a reviewer reads in an approval or summary artifact.
    return printable(" ".join(out.split()), limit=len(out) + 1)


@task(name="apply-chunk", retries=0, cache_policy=NO_CACHE)
def apply_chunk(
    decisions: list[Decision],
    *,
    client: Any,
    ledger: Any,
    run_id: str,
    note: Callable[[Decision], str] | None,
) -> list[Outcome]:
    # No task-level retries: the client already retries what is safe, and re-running a chunk is
    # safe anyway (each decision re-checks the incident), but would double the requests.
    return act.apply_decisions(
        decisions, client=client, ledger=ledger, run_id=run_id, dry_run=False, note=note
    )


def is_interactive() -> bool:
    """A run started from a deployment can pause for approval in the UI; a local call cannot."""
    from prefect.runtime import deployment

    return deployment.id is not None


def ask_approval(plan: Plan, max_actions: int) -> bool:
    from prefect.flow_runs import pause_flow_run
    from prefect.input import RunInput

    class Approval(RunInput):
        approve: bool = False

    sample = "\n".join(
        f"- {d.incident_id}: {d.action.value} {_md(str(d.arguments))} ({d.reason})"
        for d in plan.decisions[:10]
    )
    create_markdown_artifact(
        key=_artifact_key(plan.playbook, "approval"),
        markdown=(
            f"# Approval needed\n\n{len(plan)} writes planned, above the limit of {max_actions}.\n\n"
            f"First decisions:\n\n{sample}\n\n"
            "Resume the run with approve = true to apply the whole plan."
        ),
    )
    answer = pause_flow_run(wait_for_input=Approval, timeout=3600, poll_interval=2)
    return bool(answer and answer.approve)


def execute_plan(
    plan: Plan,
    *,
    client: Any,
    ledger: Any,
    run_id: str,
    dry_run: bool,
    max_actions: int,
    note: Callable[[Decision], str] | None = None,
) -> RunReport:
    logger = get_run_logger()
    ledger.record_plan(run_id, plan.decisions)
    publish_plan(plan, dry_run=dry_run)
    report = RunReport(plan.playbook, dry_run, plan)
    if dry_run:
        report.outcomes = act.apply_decisions(
            list(plan.decisions), client=client, ledger=ledger, run_id=run_id, dry_run=True
        )
    else:
        approved = False
        if len(plan) > max_actions and is_interactive():
            logger.warning("%d writes planned, above max_actions=%d: pausing for approval", len(plan), max_actions)
            approved = ask_approval(plan, max_actions)
        act.check_blast_radius(plan, max_actions, approved=approved)
        decisions = list(plan.decisions)
        # Read before this run records any result of its own.
        leftovers = act.unfinished_decisions(ledger, plan.playbook, decisions)
        for chunk in act.chunks(decisions, CHUNK):
            report.outcomes.extend(
                apply_chunk(list(chunk), client=client, ledger=ledger, run_id=run_id, note=note)
            )
        if leftovers:
            logger.info("finishing %d decision(s) an earlier run left unfinished", len(leftovers))
            report.outcomes.extend(
                act.finish_one(d, client=client, ledger=ledger, run_id=run_id) for d in leftovers
            )
    publish_outcomes(report)
    logger.info(report.summary())
    return report
