"""What every playbook run shares: the client, the scope check, the ledger run, the lease, the
Prefect glue around the one write path (tasks/act.py), and the end.

    with Playbook(NAME, scopes=..., dry_run=..., max_actions=..., parameters=...) as run:
        ... fetch, enrich, decide ...
        return run.execute(plan, note=...)

Entering checks the run's settings and its key first (tasks/preflight.py: one line naming
what to fix, nothing fetched or written). A real run takes the playbook's lease
(clients/lease.py) before it fetches anything, so its plan is made from what the previous run
left, and holds it until the end; a dry run writes nothing and takes none. `execute` shows the
plan, asks for approval when the plan is above `max_actions` and the run came from a
deployment (tasks/approval.py: the run is suspended until a person answers), applies the plan
through `act.apply_plan` (one Prefect task run per chunk, "n of N" progress), shows the
outcomes, and returns the flow's result: a dict (summary, plan, outcomes) when every write
succeeded, else a Failed state carrying the same dict, so the run's final state says what
failed and the CLI can still print the table.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prefect.cache_policies import NO_CACHE
from prefect.exceptions import Pause
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.utilities.annotations import quote

from clients.models import granted_scopes
from tasks import act, approval, artifacts, fetch, preflight, settings
from tasks.act import RunReport
from tasks.decide.paths import printable
from tasks.decide.plan import Decision, Outcome, Plan
from tasks.errors import InputError, NotApproved
from tasks.preflight import ApiUnavailable
from tasks.progress import Progress
from tasks.runtime import (
    APPROVED_TAG,
    DRY_TAG,
    WRITES_TAG,
    create_markdown_artifact,
    create_table_artifact,
    get_run_logger,
    tag_run,
    task,
)

DEFAULT_APPROVAL_TIMEOUT_HOURS = 24.0
TOKEN_RETRY_SECONDS = 5.0  # GitGuardian unreachable at the start: one more try after this


class LedgerNotShared(RuntimeError):
    """Runs of one playbook on one workspace record to different ledgers: they cannot exclude
    each other, so this one writes nothing."""


# The Prefect Variable where deployment runs record which ledger each lease lives in.
LEDGERS_VARIABLE = "gg_remediation_ledgers"


@dataclass(frozen=True)
class RunOptions:
    """What a playbook run is asked, beyond its policy: the flow's common parameters, and, when
    several playbooks share one flow run (flows/new_incidents.py), the one read of the event's
    incidents (`fetch.ScopedRead`) and the playbook's own approval pause key."""

    dry_run: bool
    max_actions: int
    approval_timeout_hours: float = DEFAULT_APPROVAL_TIMEOUT_HOURS
    incident_ids: list[int] | None = None  # None: the whole workspace
    read: fetch.ScopedRead | None = None
    approval_key: str = approval.PAUSE_KEY

    def playbook(self, name: str, scopes: Iterable[str], policy: Any) -> Playbook:
        return Playbook(name, scopes=scopes, dry_run=self.dry_run, max_actions=self.max_actions,
                        parameters={"policy": policy.model_dump(mode="json"),
                                    "incident_ids": self.incident_ids},
                        policy=policy, approval_timeout_hours=self.approval_timeout_hours,
                        approval_key=self.approval_key)

    def scoped_read(self) -> fetch.ScopedRead:
        """The shared read of the ids, or a read of this run's own (scoped runs only)."""
        assert self.incident_ids is not None
        return self.read or fetch.ScopedRead(self.incident_ids)


class Playbook:
    def __init__(
        self,
        name: str,
        *,
        scopes: Iterable[str],
        dry_run: bool,
        max_actions: int,
        parameters: dict[str, Any],
        policy: Any = None,
        approval_timeout_hours: float = DEFAULT_APPROVAL_TIMEOUT_HOURS,
        client: Any = None,
        ledger: Any = None,
        approval_key: str = approval.PAUSE_KEY,
    ):
        self.name, self.scopes, self.dry_run = name, tuple(scopes), dry_run
        self.max_actions, self.policy = max_actions, policy
        self.approval_timeout_hours = approval_timeout_hours
        self.parameters = {**parameters, "dry_run": dry_run, "max_actions": max_actions}
        self.client = client
        self.ledger = ledger
        self.token: Any = None
        self.lease: Any = None
        self.run_id: str | None = None
        self.report: RunReport | None = None
        self.answer: approval.ApprovalInput | None = None  # this attempt resumes an approval
        self.approved_ids: set[str] = set()
        self.suspended = False
        # The run's pause key: two playbooks in one flow run (flows/new_incidents.py) each ask
        # for, and read, their own approval.
        self.approval_key = approval_key
        # Incidents this run decided anything about or wrote (after `execute`): a later
        # playbook of the same flow run leaves them alone.
        self.touched: frozenset[int] = frozenset()

    def __enter__(self) -> Playbook:
        from clients.lease import LeaseHeld

        # What this run is, in the runs list (its name says it too: `runtime.run_name`).
        if self.dry_run:
            tag_run((DRY_TAG,), drop=(WRITES_TAG, APPROVED_TAG))
        else:
            tag_run((WRITES_TAG,), drop=(DRY_TAG,))
        # Settings, then the key and its scopes: one line naming what to fix, nothing fetched.
        preflight.check_playbook_settings(self.name, self.policy, max_actions=self.max_actions)
        if not (isinstance(self.approval_timeout_hours, (int, float))
                and 0 < self.approval_timeout_hours <= 24 * 30):
            raise InputError("approval_timeout_hours must be more than 0 and at most 720 "
                             f"(30 days), got {self.approval_timeout_hours!r}")
        self.client = self.client or settings.gitguardian_client()
        scopes = self.scopes if not self.dry_run else preflight.read_scopes(self.scopes)
        # A run scoped to an event's incidents takes the token's description from a cache kept
        # for the key's lifetime (tasks/fetch.py TOKEN_CACHE_SECONDS, never past its
        # expire_at); a sweep reads it.
        client = self.client
        read = ((lambda: fetch.token_info_cached(client))
                if self.parameters.get("incident_ids") is not None else None)
        try:
            self.token = preflight.check_token(self.client, scopes, read=read)
        except ApiUnavailable:
            # Once more after a pause (the client has already retried): a longer blip.
            time.sleep(TOKEN_RETRY_SECONDS)
            self.token = preflight.check_token(self.client, scopes, read=read)
        self.ledger = self.ledger or settings.ledger()
        if not self.dry_run and is_interactive():
            self._take_answer()  # a declined plan ends the run here, before anything is fetched
        self.run_id = self.ledger.start_run(
            self.name, dry_run=self.dry_run, parameters=self.parameters, flow_run_id=_flow_run_id()
        )
        if not self.dry_run:
            key = act.lease_name(self.name, getattr(self.client, "base_url", ""),
                                 getattr(self.token, "workspace_id", None))
            try:
                if is_interactive():  # from a deployment: any worker, on any host, may run it
                    check_one_ledger(key, self.ledger)
                self.lease = self.ledger.lease(key, run_id=self.run_id)
            except (LeaseHeld, LedgerNotShared) as exc:
                self.ledger.end_run(self.run_id, "refused", {"error": str(exc)})
                self.run_id = None
                raise
            if self.lease.waited >= 1:
                get_run_logger().info("waited %.0f s for another run of %s to finish",
                                      self.lease.waited, self.name)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if isinstance(exc, Pause) and self.suspended:
                pass  # suspended for approval: the ledger run says `awaiting_approval`
            elif exc is not None and self.run_id is not None and self.report is None:
                self.ledger.end_run(self.run_id, "failed", {"error": type(exc).__name__})
        finally:
            if self.lease is not None:
                self.lease.release()

    # -- approval (tasks/approval.py) -----------------------------------------------------------

    def _take_answer(self) -> None:
        """When this attempt resumes a suspension: the answer, recorded against the suspended
        attempt's ledger run. Declined: NotApproved (the run ends Cancelled)."""
        run_id = _flow_run_id()
        answer = approval.read_answer(run_id, key=self.approval_key) if run_id else None
        if answer is None:
            return
        asked = approval.awaiting_run(self.ledger, self.name, run_id)
        self._record_answer(asked, answer)
        if not answer.approve:
            raise NotApproved(f"{approval.NOT_APPROVED} (declined: {answer.reason})")
        if asked is None:
            raise NotApproved(f"{approval.NOT_APPROVED}: the approved plan is not in this "
                              f"ledger ({ledger_identity(self.ledger)}); run it again")
        self.answer = answer
        self.approved_ids = {row["decision_id"] for row in self.ledger.decisions(asked.id)}

    def _record_answer(self, asked: Any, answer: approval.ApprovalInput) -> None:
        state = approval.APPROVED if answer.approve else approval.DECLINED
        if asked is not None and asked.state == approval.AWAITING:
            self.ledger.end_run(asked.id, state, {"approve": answer.approve,
                                                  "reason": answer.reason,
                                                  "planned": (asked.summary or {}).get("planned")})
        tag_run((APPROVED_TAG,) if answer.approve else (approval.DECLINED_TAG,),
                drop=(approval.AWAITING_TAG,))
        get_run_logger().info("plan %s: %s", state, answer.reason)

    def _ask(self, plan: Plan, emails: Mapping[int, str] | None) -> None:
        """Suspend the run until a person answers (raises Prefect's Pause)."""
        logger = get_run_logger()
        logger.warning("%d writes planned, above max_actions=%d: suspended until approved "
                       "(at most %g h)", len(plan), self.max_actions, self.approval_timeout_hours)
        tag_run((approval.AWAITING_TAG,))
        try:
            answer = approval.suspend(plan, max_actions=self.max_actions,
                                      timeout_hours=self.approval_timeout_hours, emails=emails,
                                      key=self.approval_key)
        except Pause:
            self.ledger.record_plan(self.run_id, plan.decisions)
            self.ledger.end_run(self.run_id, approval.AWAITING, {
                "planned": len(plan), "max_actions": self.max_actions,
                "approval_timeout_hours": self.approval_timeout_hours})
            self.suspended = True
            raise
        except RuntimeError as exc:  # the server refused the suspension
            raise act.BlastRadiusExceeded(
                f"The plan holds {len(plan)} writes, above this run's limit of "
                f"{self.max_actions}, and approval is not possible here ({exc}): nothing was "
                "written. Raise max_actions."
            ) from None
        # The pause had already fired: the answer is for the plan recorded then.
        asked = approval.awaiting_run(self.ledger, self.name, _flow_run_id() or "")
        self._record_answer(asked, answer)
        if not answer.approve:
            raise NotApproved(f"{approval.NOT_APPROVED} (declined: {answer.reason})")
        self.answer = answer
        self.approved_ids = ({row["decision_id"] for row in self.ledger.decisions(asked.id)}
                             if asked is not None else set())

    # -- the plan ------------------------------------------------------------------------------

    def execute(self, plan: Plan, *, note: Callable[[Decision], str] | None = None,
                incidents: Iterable[Any] | None = None,
                read_filters: dict[str, Any] | None = None,
                emails: Mapping[int, str] | None = None,
                read_at: float | None = None) -> Any:
        """`incidents`: what the plan was made from, so the safety reads can be batched;
        `read_filters`: the API filters they were fetched with (see `act.apply_plan`);
        `emails`: member id -> e-mail, for decisions that name a member by id (the approval
        form shows people's e-mails); `read_at`: a scoped run's `time.monotonic()` from before
        it read `incidents` one by one, so that read is the safety read while fresh."""
        logger = get_run_logger()
        incidents = None if incidents is None else list(incidents)
        links = artifacts.IncidentLinks(incidents or ())
        approved = False
        planned = {d.incident_id for d in plan.decisions}
        publish_plan(plan, dry_run=self.dry_run, links=links)
        if not self.dry_run and is_interactive():
            if self.answer is None and len(plan) > self.max_actions:
                self._ask(plan, emails)  # suspends the run: this attempt ends here
            if self.answer is not None:
                approved_plan = approval.restrict(plan, self.approved_ids)
                if len(approved_plan) != len(plan):
                    logger.warning("%d decision(s) planned since the approval was asked are "
                                   "left for the next run", len(plan) - len(approved_plan))
                    publish_plan(approved_plan, dry_run=self.dry_run, links=links)
                plan, approved = approved_plan, True
        granted = granted_scopes(getattr(self.token, "scopes", None) or ())
        policy = self.parameters.get("policy")
        restore = bool(isinstance(policy, dict) and policy.get("restore_human_changes"))
        progress = Progress("writes", unit="decisions", logger=logger)
        self.report = report = act.apply_plan(
            plan, client=self.client, ledger=self.ledger, run_id=self.run_id,
            dry_run=self.dry_run, max_actions=self.max_actions, approved=approved, note=note,
            lease=self.lease, token_id=getattr(self.token, "id", None),
            detect_overwrites="audit_logs:read" in granted, restore_human_changes=restore,
            run_chunk=_run_chunk, incidents=incidents, read_filters=read_filters,
            progress=progress.update, read_at=read_at,
        )
        progress.finish()
        self.touched = frozenset(planned | {o.decision.incident_id for o in report.outcomes})
        if self.lease is not None:
            report.lease_waited = self.lease.waited
        publish_outcomes(report, links=links)
        logger.info(report.summary())
        result = {
            "playbook": self.name,
            "dry_run": self.dry_run,
            "summary": report.summary(),
            "counts": report.counts,
            "plan": [d.row() for d in plan.decisions],
            "skipped": [s.row() for s in plan.skips],
            "outcomes": [o.row() for o in report.outcomes],
            "requests": dict(getattr(self.client, "request_counts", {})),
            "max_read_age": round(max(report.read_ages, default=0.0), 3),
        }
        ended = {"counts": report.counts, "planned": len(plan),
                 "lease_waited": round(report.lease_waited, 1)}
        if self.answer is not None:
            result["approval"] = ended["approval"] = {"approve": True,
                                                      "reason": self.answer.reason}
        state = "failed" if report.failed else "completed"
        self.ledger.end_run(self.run_id, state, ended)
        if report.failed:
            ids = ", ".join(str(o.decision.incident_id) for o in report.failed[:20])
            return Failed(
                message=f"{len(report.failed)} of {len(report.outcomes)} writes failed "
                f"(incidents {ids}); the others were applied. See the outcomes artifact.",
                data=result,
            )
        return result


@task(name="apply-chunk", retries=0, cache_policy=NO_CACHE)
def apply_chunk(apply: Callable[[list[Decision]], list[Outcome]],
                decisions: list[Decision]) -> list[Outcome]:
    # No task-level retries: the client already retries what is safe, and re-running a chunk is
    # safe anyway (each decision is claimed and re-checked), but would double the requests.
    return apply(decisions)


def _run_chunk(apply: Callable[[list[Decision]], list[Outcome]],
               chunk: list[Decision]) -> list[Outcome]:
    return apply_chunk(apply, quote(chunk))


# ------------------------------------------------------------------ artifacts

def _artifact_key(playbook: str, what: str) -> str:
    return f"{playbook}-{what}".lower()


def publish_plan(plan: Plan, *, dry_run: bool,
                 links: artifacts.IncidentLinks | None = None) -> None:
    """The plan as people read it: incident (linked), action, who / what, why, short evidence
    (tasks/artifacts.py); the full evidence is in the ledger under the decision id."""
    links = links or artifacts.IncidentLinks()
    rows = ([artifacts.plan_row(d, links) for d in plan.decisions]
            or [{"incident": "", "action": "nothing to do"}])
    create_table_artifact(
        key=_artifact_key(plan.playbook, "plan"),
        table=rows,
        description=f"{plan.playbook}: {len(plan)} decisions "
                    f"({'dry run: nothing written' if dry_run else 'to apply'})",
    )
    if plan.skips:
        skipped = Counter(s.reason for s in plan.skips)
        create_table_artifact(
            key=_artifact_key(plan.playbook, "skipped"),
            table=[{"reason": r, "incidents": n} for r, n in skipped.most_common()],
            description=f"{plan.playbook}: incidents looked at and left, by reason",
        )


def publish_outcomes(report: RunReport, *, links: artifacts.IncidentLinks | None = None) -> None:
    """The outcomes (the plan's columns plus the result) and the run's Markdown summary."""
    links = links or artifacts.IncidentLinks()
    rows = ([artifacts.outcome_row(o, links) for o in report.outcomes]
            or [{"incident": "", "result": "nothing to do"}])
    create_table_artifact(
        key=_artifact_key(report.playbook, "outcomes"),
        table=rows,
        description=report.summary(),
    )
    create_markdown_artifact(
        key=_artifact_key(report.playbook, "summary"),
        markdown=artifacts.summary_markdown(report, links, headline=report.summary()),
    )


def _md(text: str) -> str:
    """Values from GitGuardian may hold Markdown or HTML: show them as text."""
    out = text.replace("\\", "\\\\")
    for ch in "`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    # Control and format characters (ESC, NUL, right-to-left overrides) shown as escapes: they
    # could hide or reorder what a reviewer reads in an approval or summary artifact.
    return printable(" ".join(out.split()), limit=len(out) + 1)


# ------------------------------------------------------------------ approval

def is_interactive() -> bool:
    """A run started from a deployment can be suspended for approval in the UI; a local call
    cannot (see tasks/approval.py)."""
    from prefect.runtime import deployment

    return deployment.id is not None


def ledger_identity(ledger: Any) -> str:
    """Where a ledger is, as a worker elsewhere would see it (never with its password)."""
    import socket
    from pathlib import Path

    if ledger.is_sqlite:
        where = str(Path(ledger.url.database or ":memory:").expanduser().resolve())
        return f"SQLite file {where} on host {socket.gethostname()}"
    return ledger.url.render_as_string(hide_password=True)


def check_one_ledger(key: str, ledger: Any) -> None:
    """Refuse a set-up that cannot exclude: deployment runs of one playbook on one workspace
    must all take their lease in one ledger (workers on several hosts: one shared Postgres URL).

    The first run records its ledger in the Prefect Variable `gg_remediation_ledgers`; a run
    that finds another ledger recorded for its lease refuses before fetching anything. Without
    a reachable Prefect API there is nothing to compare with (a local run on one machine).
    """
    from prefect.variables import Variable

    mine = ledger_identity(ledger)
    try:
        known = Variable.get(LEDGERS_VARIABLE, default=None, _sync=True) or {}
    except Exception:  # noqa: BLE001 - no server to compare with
        return
    known = known if isinstance(known, dict) else {}
    theirs = known.get(key)
    if theirs is None:
        try:
            Variable.set(LEDGERS_VARIABLE, {**known, key: mine}, overwrite=True, _sync=True)
        except Exception:  # noqa: BLE001 - recorded by the next run instead
            pass
        return
    if theirs != mine:
        raise LedgerNotShared(
            f"runs of {key} record to another ledger ({theirs}) than this one ({mine}): runs "
            "on different ledgers cannot exclude each other, so nothing was written. Set the "
            "same LEDGER_URL (a shared Postgres database) on every worker; if the ledger moved "
            f"on purpose, delete the Prefect Variable {LEDGERS_VARIABLE!r}."
        )


def _flow_run_id() -> str | None:
    value = flow_run.id
    return str(value) if value else None
