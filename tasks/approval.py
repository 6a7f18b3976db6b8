"""Approval of a plan above `max_actions`, as a form in the Prefect UI.

A real run started from a deployment whose plan holds more writes than its `max_actions`
records the plan in the ledger (run state `awaiting_approval`), tags itself
`awaiting-approval` and is **suspended** (`prefect.flow_runs.suspend_flow_run`): the process
ends and the worker (or `serve`) is free; the lease is released. The run's Resume dialog is the
`ApprovalInput` form: `approve` and a mandatory `reason`, its description the plan's summary
(counts by action and reason, the first decisions with people's e-mails, the plan artifact's
name and a link to this run's artifacts, the deadline).

Answered, the run starts again from the top (Prefect reschedules a resumed suspended run; no
result is carried over, so none needs persisting):
- declined: the answer and its reason are recorded in the ledger against the suspended
  attempt's run (state `declined`), before anything is fetched; the flow run ends
  **Cancelled** "not approved, nothing written";
- approved: recorded likewise (state `approved`); the plan is made again from what GitGuardian
  says now, and only the decisions that were in the approved plan are applied (each still
  re-read right before its write, as always); a decision new since then is skipped as
  `not_in_approved_plan`, for the next run to plan again.

Not answered within `approval_timeout_hours` (default 24): the Prefect server fails the
suspended run ("The flow was paused and never resumed."); the automation `python -m
deployments.setup` creates (and `python -m deployments.serve` ensures) turns that into
**Cancelled** "not approved within its approval timeout: nothing written". Without that
automation the run stays Failed with Prefect's message; nothing is written either way, and the
ledger keeps the attempt as `awaiting_approval`. Cancelling the suspended run from the UI ends
it Cancelled at once.

A run not started from a deployment (the command line, a Python call) cannot be suspended (the
Prefect server refuses: a resumed run is restarted from its deployment): its plan above
`max_actions` is refused before any write, Failed with "raise max_actions, or run it from a
deployment to approve it" (exit 2 on the command line).
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect.input import RunInput
from pydantic import Field

from tasks.decide.paths import printable
from tasks.decide.plan import Action, Decision, Plan, Skip

PAUSE_KEY = "approval"
AWAITING_TAG, DECLINED_TAG = "awaiting-approval", "declined"
# Ledger run states: the suspended attempt's run ends AWAITING, then gains the answer's state.
AWAITING, APPROVED, DECLINED = "awaiting_approval", "approved", "declined"
NOT_IN_APPROVED_PLAN = "not_in_approved_plan"
NOT_APPROVED = "not approved, nothing written"
TIMEOUT_MESSAGE = "not approved within its approval timeout: nothing written"
# The Failed messages the server gives a suspended run past its timeout (expiry service, or a
# resume attempt after the deadline): the automation turns them into TIMEOUT_MESSAGE.
SERVER_TIMEOUT_MESSAGES = ("The flow was paused and never resumed.",
                           "The flow was suspended and never resumed.")
FIRST = 10  # decisions listed in the form


class ApprovalInput(RunInput):
    """The Resume form of a run waiting for approval; its description is the plan's summary."""

    approve: bool = Field(
        False, title="Approve",
        description="On: apply the plan summarised above. Off: decline it; the run ends "
                    "Cancelled and nothing is written.")
    reason: str = Field(
        ..., title="Reason", min_length=3, max_length=2000,
        description="Why you approve or decline (required): recorded in the audit ledger "
                    "with your answer.")


def _md(value: Any) -> str:
    """A value from GitGuardian or a policy, shown as text in Markdown (no markup, no control
    characters)."""
    text = str(value).replace("\\", "\\\\")
    for ch in "`*_[]<>|#":
        text = text.replace(ch, "\\" + ch)
    return printable(" ".join(text.split()), limit=200)


def target(decision: Decision, emails: Mapping[int, str] | None = None) -> str:
    """Who or what a decision is about, in words: the new assignee's e-mail, the ignore reason."""
    args = decision.arguments or {}
    match decision.action:
        case Action.ASSIGN:
            email = args.get("email") or (emails or {}).get(args.get("member_id"))
            return f"to {email}" if email else f"to member {args.get('member_id')}"
        case Action.IGNORE:
            return f"as {args.get('ignore_reason')}"
        case Action.RESOLVE:
            return "secret revoked" if args.get("secret_revoked") else "secret not revoked"
        case Action.SHARE:
            return f"share link, {args.get('lifespan_hours') or 'no'} hour limit"
        case Action.NOTE:
            return "a note"
        case _:
            return ""


def describe(plan: Plan, *, max_actions: int, deadline: datetime, timeout_hours: float,
             emails: Mapping[int, str] | None = None, run_url: str | None = None) -> str:
    """The form's description (Markdown): what approving would write."""
    counts = Counter((d.action.value, d.reason) for d in plan.decisions)
    lines = [
        f"### {len(plan)} writes planned by {_md(plan.playbook)}, above this run's limit of "
        f"{max_actions}",
        "",
        "**Approve** to apply them, or leave it off to **decline**: the run then ends "
        "Cancelled with nothing written. Either way, give a reason: it goes to the audit "
        "ledger with your answer.",
        "",
        "| action | reason | writes |",
        "|---|---|---:|",
        *[f"| {_md(a)} | {_md(r)} | {n} |" for (a, r), n in counts.most_common()],
        "",
        f"First {min(FIRST, len(plan))} of {len(plan)}:",
        "",
        "| incident | action | to / what | reason |",
        "|---:|---|---|---|",
        *[f"| {d.incident_id} | {d.action.value} | {_md(target(d, emails))} | {_md(d.reason)} |"
          for d in plan.decisions[:FIRST]],
        "",
        f"The whole plan, with each decision's evidence: the artifact "
        f"`{plan.playbook}-plan`" + (f", in [this run's Artifacts tab]({run_url}?tab=Artifacts)"
                                     if run_url else " (this run's Artifacts tab)") + ".",
        "",
        f"Answer by {deadline:%Y-%m-%d %H:%M} UTC (approval_timeout_hours = {timeout_hours:g}); "
        "after that the run ends Cancelled, nothing written. Once answered, the run starts "
        "again, makes its plan anew and applies only the approved decisions it still plans.",
    ]
    return "\n".join(lines)


def read_answer(flow_run_id: Any, key: str = PAUSE_KEY) -> ApprovalInput | None:
    """The answer to this flow run's approval when this attempt resumes its suspension; None
    otherwise (first attempt, or a run restarted by hand: its pause key was reset). `key`: the
    pause's key (a flow run of two playbooks gives each its own)."""
    from prefect.client.orchestration import get_client
    from prefect.input.actions import read_flow_run_input
    from prefect.input.run_input import keyset_from_base_key

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
    if key not in (run.empirical_policy.pause_keys or set()):
        return None
    keyset = keyset_from_base_key(f"suspended-{key}")
    value = read_flow_run_input(keyset["response"], flow_run_id=flow_run_id)
    if not value:
        return None
    value = json.loads(value) if isinstance(value, str) else value
    return ApprovalInput(**value)


def suspend(plan: Plan, *, max_actions: int, timeout_hours: float,
            emails: Mapping[int, str] | None = None, key: str = PAUSE_KEY) -> ApprovalInput:
    """Suspend the current flow run until its approval is answered (raises Prefect's `Pause`:
    this process's part of the run ends). Returns the answer only when Prefect says this pause
    already fired (an answered run that reached here without `read_answer` seeing it)."""
    from prefect.flow_runs import suspend_flow_run
    from prefect.runtime import flow_run

    seconds = max(1, int(round(timeout_hours * 3600)))
    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    form = ApprovalInput.with_initial_data(
        description=describe(plan, max_actions=max_actions, deadline=deadline,
                             timeout_hours=timeout_hours, emails=emails,
                             run_url=flow_run.ui_url),
        approve=False,
    )
    return suspend_flow_run(wait_for_input=form, timeout=seconds, key=key)


def restrict(plan: Plan, approved_ids: set[str]) -> Plan:
    """The plan's decisions that were approved; the others become skips, planned again next
    run."""
    kept = tuple(d for d in plan.decisions if d.decision_id in approved_ids)
    dropped = tuple(
        Skip(d.incident_id, NOT_IN_APPROVED_PLAN,
             f"{d.action.value} {target(d)} was not in the approved plan (planned since the "
             "approval was asked): not written; the next run plans it again")
        for d in plan.decisions if d.decision_id not in approved_ids
    )
    return Plan(plan.playbook, kept, plan.skips + dropped)


def awaiting_run(ledger: Any, playbook: str, flow_run_id: str) -> Any:
    """The ledger run of this flow run's suspended attempt (the latest), or None."""
    found = [r for r in ledger.runs(playbook, flow_run_id=flow_run_id)
             if r.state in (AWAITING, APPROVED, DECLINED)]
    return found[-1] if found else None


def ensure_timeout_automation(client: Any = None) -> str:
    """The Prefect automation that ends a playbook run Cancelled ("not approved within its
    approval timeout: nothing written") when the server fails it for not being resumed in
    time. Created, or updated to this definition; safe to call again."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture

    from tasks.runtime import RUN_LABELS

    name = "gg-remediation: approval timed out"
    flows = sorted(f for f in RUN_LABELS if f != "weekly-report")
    automation = Automation(
        name=name,
        description="A playbook run suspended for approval and not answered in time ends "
                    "Cancelled (nothing was written), not Failed.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed"},
            match={"prefect.resource.id": "prefect.flow-run.*",
                   "prefect.state-message": list(SERVER_TIMEOUT_MESSAGES)},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": flows},
            posture=Posture.Reactive, threshold=1, within=timedelta(0),
        ),
        actions=[ChangeFlowRunState(state=StateType.CANCELLED, name="Cancelled",
                                    message=TIMEOUT_MESSAGE, force=True)],
    )
    try:
        existing = Automation.read(name=name)
    except Exception:  # noqa: BLE001 - not found (ValueError) or the server's own 404
        existing = None
    if existing is None:
        automation.create()
        return f"automation {name!r} created"
    automation.id = existing.id
    automation.update()
    return f"automation {name!r} up to date"
