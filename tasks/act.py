"""The one write path: every state change a playbook makes goes through `apply_plan`.

Plain Python, no Prefect: the Prefect glue (tasks, artifacts, approval) is in tasks/playbook.py
and reaches in only through `run_chunk`. The rules a state is checked against are in
tasks/act_rules.py, the writer that carries the chunks out (claims, safety reads, writes, notes,
the after-write audit check) in tasks/act_writer.py; this module re-exports what callers use.
Read `apply_plan` top to bottom:

1. the plan goes to the ledger; a dry run stops there with every decision `would_apply`;
2. the run's blast-radius limit: a plan larger than `max_actions` is refused whole unless it
   was approved;
3. the lease (clients/lease.py): no two runs of one playbook on one workspace write at once;
4. chunk by chunk, each decision (decisions on one incident in plan order, incidents side by
   side on a few threads) is claimed under the lease, its intent recorded, the incident read
   again (or, in a run scoped to a few incidents, its state from the run's own read while that
   read is at most 10 s old), and then:
   - as decided *and* made so by this project (our token where the API says who, else an
     earlier attempt of ours in the ledger): `already_done`, its note made sure of;
   - as decided by someone else, or no longer matching the plan's precondition:
     `state_changed`, nothing written, no note;
   - else the write, then its note (with the decision's marker; looked for first only when an
     earlier attempt may have written it). A 409 is never "done" by itself: the incident is
     read again and classified as above;
5. after each chunk, the audit log tells whether someone else changed an incident between our
   read and our write: `overwrote_human_change` (or, when the policy asks, the person's value
   put back: `restored_human_change`);
6. earlier runs' unfinished decisions that this plan no longer holds are finished or closed.
One incident's failure is recorded and the others go on.
"""
from __future__ import annotations

import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tasks.act_rules import (
    as_decided,
    describe,
    error_detail,
    made_by,
    precondition_holds,
)
from tasks.act_writer import MAX_READ_AGE, WORKERS, ChunkStates, Writer
from tasks.decide.plan import Action, Decision, Outcome, Plan, Result

# The write path's public face: apply_plan and what its callers and tests use (the rules and
# the writer live in tasks/act_rules.py and tasks/act_writer.py).
__all__ = [
    "CHUNK", "MAX_READ_AGE", "WORKERS", "BlastRadiusExceeded", "ChunkStates", "RunReport",
    "Writer", "apply_plan", "as_decided", "check_blast_radius", "chunks", "decision_from_row",
    "describe", "error_detail", "lease_name", "made_by", "precondition_holds",
    "unfinished_decisions",
]

logger = logging.getLogger(__name__)

CHUNK = 100  # decisions per chunk (a Prefect task run each): a task run costs 2-4 ms


class BlastRadiusExceeded(RuntimeError):
    """The plan holds more writes than the run may make without approval."""


@dataclass
class RunReport:
    playbook: str
    dry_run: bool
    plan: Plan
    outcomes: list[Outcome] = field(default_factory=list)
    lease_waited: float = 0.0
    detection: str = ""  # how overwrites were looked for, or why not
    read_ages: list[float] = field(default_factory=list)  # age of each write's safety read, s

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(o.result.value for o in self.outcomes))

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.failed]

    @property
    def overwrites(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result in (Result.OVERWROTE_HUMAN_CHANGE,
                                                          Result.RESTORED_HUMAN_CHANGE)]

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "nothing to do"
        mode = "dry run" if self.dry_run else "run"
        text = (f"{self.playbook} {mode}: {len(self.plan)} planned, {len(self.plan.skips)} "
                f"skipped; {counts}")
        if self.lease_waited >= 1:
            text += f"; waited {self.lease_waited:.0f} s for another run to finish"
        if self.overwrites:
            text += (f"; {len(self.overwrites)} write(s) landed over a change someone made "
                     "meanwhile: see the outcomes")
        return text


def check_blast_radius(plan: Plan, max_actions: int, *, approved: bool = False) -> None:
    if max_actions < 0:
        raise ValueError("max_actions must be 0 or more")
    if len(plan) > max_actions and not approved:
        raise BlastRadiusExceeded(
            f"The plan holds {len(plan)} writes, above this run's limit of {max_actions}: "
            "nothing was written. Raise max_actions, or run it from a deployment to approve it."
        )


def lease_name(playbook: str, base_url: str | None, workspace_id: Any = None) -> str:
    """One lease per playbook and workspace (all bulk runs share the bulk playbook's)."""
    where = (base_url or "").rstrip("/")
    return f"{playbook}@{where}" + (f"#{workspace_id}" if workspace_id is not None else "")


# ------------------------------------------------------------------ the plan

def apply_plan(
    plan: Plan,
    *,
    client: Any,
    ledger: Any,
    run_id: str,
    dry_run: bool,
    max_actions: int,
    approved: bool = False,
    note: Callable[[Decision], str] | None = None,
    lease: Any = None,
    lease_key: str | None = None,
    token_id: str | None = None,
    detect_overwrites: bool = True,
    restore_human_changes: bool = False,
    workers: int = WORKERS,
    chunk_size: int = CHUNK,
    run_chunk: Callable[[Callable[[list[Decision]], list[Outcome]], list[Decision]],
                        list[Outcome]] | None = None,
    progress: Callable[[int, int], None] | None = None,  # (done, total) after each decision
    incidents: Iterable[Any] | None = None,
    read_filters: dict[str, Any] | None = None,
    max_read_age: float = MAX_READ_AGE,
    read_at: float | None = None,
) -> RunReport:
    """Apply `plan` (see the module's text). `lease`: one the caller holds (a playbook takes it
    before fetching); without it, this takes `lease_key` (default the playbook's name) for the
    writes. `run_chunk(apply, chunk)` runs one chunk (Prefect wraps it in a task).
    `incidents`: the incidents the plan was made from (their `date` and `status`), so each
    chunk's safety reads can be one listing of the chunk's date window instead of one read
    per incident (see `ChunkStates`); `read_filters`: the server-side filters the plan's
    incidents were fetched with (beyond status), so that listing returns only their like.
    `read_at`: when given, `incidents` are whole incidents read one by one (a scoped run's
    GETs) and this is `time.monotonic()` taken before that read began: while at most
    `max_read_age` seconds old at the moment of a write, an incident's state from that read is
    its safety read (the same checks, the same after-write audit window from that moment);
    older, it is read again as usual."""
    report = RunReport(plan.playbook, dry_run, plan)
    ledger.record_plan(run_id, plan.decisions)
    if dry_run:
        report.outcomes = [Outcome(d, Result.WOULD_APPLY) for d in plan.decisions]
        return report
    check_blast_radius(plan, max_actions, approved=approved)
    decisions = list(plan.decisions)
    if incidents is not None:
        # Chunks of incidents close in time, so that each chunk's batched safety read is a
        # short listing of a narrow date window (decisions on one incident keep their order).
        incidents = list(incidents)
        dated = {int(i.id): i.date for i in incidents if getattr(i, "date", None) is not None}
        far = max(dated.values(), default=None)
        if far is not None:
            decisions.sort(key=lambda d: dated.get(d.incident_id, far))
    # Read before this run records any result of its own.
    leftovers = unfinished_decisions(ledger, plan.playbook, decisions)
    if not decisions and not leftovers:
        return report
    with _holding(lease, ledger, lease_key or plan.playbook, run_id) as held:
        report.lease_waited = getattr(held, "waited", 0.0) if lease is None else 0.0
        counted = _Counter(len(decisions), progress)
        writer = Writer(client, ledger, run_id, held, token_id=token_id, note=note,
                        workers=workers, detect=detect_overwrites,
                        restore=restore_human_changes, incidents=incidents,
                        max_read_age=max_read_age, read_filters=read_filters,
                        on_done=counted.one, read_at=read_at)
        run_chunk = run_chunk or (lambda apply, chunk: apply(chunk))
        for chunk in chunks(decisions, chunk_size):
            report.outcomes.extend(run_chunk(writer.apply_chunk, list(chunk)))
        if leftovers:
            logger.info("finishing %d decision(s) an earlier run left unfinished", len(leftovers))
            report.outcomes.extend(writer.finish(d) for d in leftovers)
        report.detection = writer.detection
        report.read_ages = writer.read_ages
    return report


class _Counter:
    """Decisions carried out so far, reported to `progress(done, total)` after each one (from
    the writer's threads)."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None):
        self.total, self.progress, self.done = total, progress, 0
        self._lock = threading.Lock()

    def one(self) -> None:
        if self.progress is None:
            return
        with self._lock:
            self.done += 1
            done = self.done
        self.progress(done, self.total)


@contextlib.contextmanager
def _holding(lease: Any, ledger: Any, key: str, run_id: str) -> Iterator[Any]:
    if lease is not None:
        yield lease
        return
    taken = ledger.lease(key, run_id=run_id)
    try:
        yield taken
    finally:
        taken.release()


def decision_from_row(row: dict[str, Any]) -> Decision | None:
    """A decision as the ledger recorded it (its precondition is not recorded: it is only
    used to tell whether the incident already is as decided)."""
    try:
        decision = Decision(row["playbook"], int(row["incident_id"]), Action(row["action"]),
                            dict(row["arguments"]), str(row["reason"]), str(row["evidence"]))
    except (KeyError, ValueError, TypeError):
        return None
    return decision if decision.decision_id == row["decision_id"] else None


def unfinished_decisions(ledger: Any, playbook: str, planned: Iterable[Decision]) -> list[Decision]:
    """Earlier runs' unfinished decisions that `planned` does not hold again."""
    rows = getattr(ledger, "unfinished", None)
    if rows is None:
        return []
    again = {d.decision_id for d in planned}
    found = (decision_from_row({**row, "playbook": playbook}) for row in rows(playbook))
    return [d for d in found if d is not None and d.decision_id not in again]


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
