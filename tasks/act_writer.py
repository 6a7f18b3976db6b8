"""The writer behind `apply_plan` (tasks/act.py): carries a plan's decisions out, chunk by chunk,
under the run's lease, and looks in the audit log after each chunk for a change someone made
between our read and our write.

`Writer` claims each decision, records its intent, reads the incident again (`ChunkStates`:
the chunk's safety reads, batched where that costs fewer requests), applies the rules of
tasks/act_rules.py, writes, notes, and records the result. No Prefect.
"""
from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from tasks.act_rules import (
    as_decided,
    describe,
    ensure_note,
    error_detail,
    has_note,
    made_by,
    perform,
    precondition_holds,
)
from tasks.decide.notes import marker
from tasks.decide.plan import Action, Decision, Outcome, Result

logger = logging.getLogger("tasks.act")  # the write path logs under one name

WORKERS = 4  # incidents written side by side
# Audit-log pages read after a chunk to find edits made between our reads and our writes.
AUDIT_PAGES = 20
AUDIT_MARGIN = 1.0  # seconds of slack on the read-to-write window, in the server's clock
# The safety read: a state read in a batch is used for a write only while it is this fresh;
# older, the rest of the chunk is read again.
MAX_READ_AGE = 10.0
PER_PAGE = 100


class Writer:
    """Carries decisions out under a held lease; one per run's apply step."""

    def __init__(self, client: Any, ledger: Any, run_id: str, lease: Any, *,
                 token_id: str | None, note: Callable[[Decision], str] | None,
                 workers: int = WORKERS, detect: bool = True, restore: bool = False,
                 incidents: Iterable[Any] | None = None, max_read_age: float = MAX_READ_AGE,
                 read_filters: dict[str, Any] | None = None,
                 on_done: Callable[[], None] | None = None, read_at: float | None = None):
        self.client, self.ledger, self.run_id, self.lease = client, ledger, run_id, lease
        self.on_done = on_done
        self.token_id, self.note, self.workers = token_id, note, workers
        self.seen = {int(i.id): (i.date, i.status) for i in incidents or ()
                     if getattr(i, "date", None) is not None}
        self.max_read_age = max_read_age
        # The plan's own read, usable as the safety read while fresh (see `apply_plan`).
        self.fresh = ({int(i.id): i for i in incidents or ()} if read_at is not None else {})
        self.fresh_at = read_at if read_at is not None else float("-inf")
        self.read_filters = dict(read_filters or {})
        self.read_filters.pop("status", None)  # the chunk's own statuses are listed
        self.read_ages: list[float] = []
        self._ages_lock = threading.Lock()
        self.detect, self.restore = detect and bool(token_id), restore
        self.detection = ("audit log after each chunk" if self.detect else
                          "off: the token's id is unknown" if detect else "off")

    # -- one chunk -----------------------------------------------------------------------------

    def apply_chunk(self, decisions: list[Decision]) -> list[Outcome]:
        """Outcomes in the order of `decisions`."""
        windows: dict[int, tuple[float, float]] = {}
        states = ChunkStates(self, decisions)

        def in_order(group: list[int]) -> list[tuple[int, Outcome]]:
            # Decisions on one incident (assign, then share) run in plan order, in one thread.
            done = []
            for i in group:
                done.append((i, self.apply_one(decisions[i], windows, i, states)))
                if self.on_done is not None:
                    self.on_done()
            return done

        groups: dict[int, list[int]] = {}
        for index, decision in enumerate(decisions):
            groups.setdefault(decision.incident_id, []).append(index)
        if self.workers <= 1 or len(groups) <= 1:
            done = [pair for group in groups.values() for pair in in_order(group)]
        else:
            # Each thread runs in a copy of this context: its progress logs carry the run's
            # Prefect settings (API URL) and run, instead of the environment's.
            contexts = [contextvars.copy_context() for _ in groups]
            with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="act") as pool:
                done = [pair for pairs in pool.map(lambda context, group: context.run(
                    in_order, group), contexts, groups.values()) for pair in pairs]
        outcomes = [outcome for _, outcome in sorted(done, key=lambda pair: pair[0])]
        if self.detect and windows:
            outcomes = self._check_overwrites(outcomes, windows)
        return outcomes

    def _begin(self, decision: Decision) -> tuple[Any, int]:
        """The claim and the intent: one ledger transaction when the lease can do both."""
        if hasattr(self.lease, "begin"):
            return self.lease.begin(decision)
        claim = self.lease.claim(decision.decision_id)
        return claim, self.ledger.record_intent(self.run_id, decision)

    # -- one decision ----------------------------------------------------------------------------

    def apply_one(self, decision: Decision, windows: dict[int, tuple[float, float]] | None = None,
                  index: int = 0, states: ChunkStates | None = None) -> Outcome:
        claim, intent_id = self._begin(decision)
        if not claim.ok:
            outcome = Outcome(decision, Result.NOT_CLAIMED, f"{claim.why}: nothing written")
        else:
            try:
                outcome, window = self._carry_out(decision, earlier=claim.earlier, states=states)
                if window and windows is not None:
                    windows[index] = window
            except Exception as exc:  # noqa: BLE001 - one incident's failure never stops others
                logger.warning("incident %s: %s failed: %s", decision.incident_id,
                               decision.action.value, error_detail(exc))
                outcome = Outcome(decision, Result.FAILED, error_detail(exc))
        self.ledger.record_result(intent_id, outcome.result.value, outcome.detail)
        return outcome

    def _carry_out(self, decision: Decision, *, earlier: bool, states: ChunkStates | None = None
                   ) -> tuple[Outcome, tuple[float, float] | None]:
        from clients.gitguardian import Conflict

        client = self.client
        body = self.note(decision) if self.note else None
        if decision.action is Action.NOTE:
            if earlier and has_note(client, decision):
                return Outcome(decision, Result.ALREADY_DONE, "the note already exists"), None
            if decision.precondition.before_note:  # a note that holds only while it is true
                current = (states.current(decision.incident_id)[0] if states is not None
                           else client.incident(decision.incident_id))
                if not precondition_holds(decision, current):
                    return Outcome(decision, Result.STATE_CHANGED,
                                   f"{describe(current)}; no note written"), None
            ensure_note(client, decision, body, check_first=False)
            return Outcome(decision, Result.APPLIED), None
        if states is not None:
            current, read_at = states.current(decision.incident_id)
        else:
            current, read_at = client.incident(decision.incident_id), time.monotonic()
        if as_decided(decision, current):
            return self._already(decision, current, earlier, body), None
        if not precondition_holds(decision, current):
            return Outcome(decision, Result.STATE_CHANGED, describe(current)), None
        if not self.lease.valid():
            return Outcome(decision, Result.NOT_CLAIMED,
                           "this run's lease is lost or expiring: nothing written"), None
        try:
            with self._ages_lock:
                self.read_ages.append(time.monotonic() - read_at)
            perform(client, decision)
        except Conflict as exc:
            again = client.incident(decision.incident_id)
            if as_decided(decision, again) and made_by(decision, again, self.token_id) == "us":
                ensure_note(client, decision, body, check_first=True)
                detail = f"409 ({exc.detail}); the incident is as decided by this token"
                return Outcome(decision, Result.ALREADY_DONE, detail), None
            return Outcome(decision, Result.STATE_CHANGED,
                           f"409 ({exc.detail}); {describe(again)}; not written, no note"), None
        written_at = time.monotonic()
        ensure_note(client, decision, body, check_first=earlier)
        return Outcome(decision, Result.APPLIED), (read_at, written_at)

    def _already(self, decision: Decision, current: Any, earlier: bool,
                 body: str | None) -> Outcome:
        who = made_by(decision, current, self.token_id)
        if who == "us" or (who == "unknown" and earlier):
            ensure_note(self.client, decision, body, check_first=True)
            return Outcome(decision, Result.ALREADY_DONE, "the incident already was as decided")
        actor = "someone else" if who == "other" else "someone, not this project"
        return Outcome(decision, Result.STATE_CHANGED,
                       f"already as decided, made so by {actor} ({describe(current)}): "
                       "no note written")

    # -- after the chunk: did someone change an incident between our read and our write? ----------

    def _check_overwrites(self, outcomes: list[Outcome],
                          windows: dict[int, tuple[float, float]]) -> list[Outcome]:
        try:
            logs = self._recent_audit_logs(outcomes, windows)
        except Exception as exc:  # noqa: BLE001 - detection is best effort, and says so
            logger.warning("after-write check skipped for a chunk: %s", error_detail(exc))
            self.detection = f"audit log unreadable for a chunk ({type(exc).__name__})"
            return outcomes
        if logs is None:
            return outcomes
        result = list(outcomes)
        for index, (read_at, written_at) in windows.items():
            outcome = outcomes[index]
            found = _foreign_edit(logs, outcome.decision, self.token_id,
                                  gap=written_at - read_at + AUDIT_MARGIN)
            if found is not None:
                result[index] = self._overwrote(outcome, found)
        return result

    def _recent_audit_logs(self, outcomes: list[Outcome],
                           windows: dict[int, tuple[float, float]]) -> list[Any] | None:
        """Audit entries, newest first, back to before the chunk's first read (server clock)."""
        wanted = {str(outcomes[i].decision.incident_id) for i in windows}
        span = time.monotonic() - min(r for r, _ in windows.values()) + AUDIT_MARGIN
        logs: list[Any] = []
        newest = None
        for number, page in enumerate(self.client.audit_logs(per_page=100).pages()):
            logs.extend(page)
            if page and newest is None:
                newest = page[0].date
            if not page or (newest - page[-1].date).total_seconds() > span:
                return logs
            if number + 1 >= AUDIT_PAGES:
                break
        else:
            return logs  # every page read
        logger.warning("after-write check: more than %d audit-log pages since the chunk began; "
                       "only those were read (incidents %s)", AUDIT_PAGES,
                       ", ".join(sorted(wanted))[:200])
        return logs

    def _overwrote(self, outcome: Outcome, edit: Any) -> Outcome:
        decision = outcome.decision
        who = edit.member_email or "a member"
        theirs = f"{edit.event_name} by {who} at {edit.date.isoformat()}"
        if edit.data:
            theirs += f" ({edit.data})"
        from clients.ledger import scrub

        ours = f"{decision.action.value} {decision.arguments}"
        # Audit entries are the server's words: scrubbed like every error text (share links).
        detail = scrub(f"between our read and our write: {theirs}; ours then: {ours}")[:1000]
        if self.restore:
            restored = self._restore(decision, edit)
            if restored:
                return Outcome(decision, Result.RESTORED_HUMAN_CHANGE, f"{detail}; {restored}")
            detail += "; not restorable automatically"
        logger.warning("incident %s: %s", decision.incident_id, detail)
        return Outcome(decision, Result.OVERWROTE_HUMAN_CHANGE, detail)

    def _restore(self, decision: Decision, edit: Any) -> str:
        """Put back the person's value where the audit entry says what it was (an assign)."""
        member_id = (edit.data or {}).get("assignee_id") if isinstance(edit.data, dict) else None
        if decision.action is not Action.ASSIGN or member_id is None:
            return ""
        try:
            self.client.assign(decision.incident_id, member_id=int(member_id), send_email=False)
            self.client.add_note(decision.incident_id, (
                "Restored the assignee a person chose while this automation was reassigning the "
                f"incident (its write landed a moment after theirs).\n\n{marker(decision)} restored"
            ))
        except Exception as exc:  # noqa: BLE001 - reported in the outcome
            return f"restoring failed: {error_detail(exc)}"
        return f"restored: assigned back to member {member_id}"

    # -- earlier runs' leftovers -------------------------------------------------------------------

    def finish(self, decision: Decision) -> Outcome:
        """An earlier run's decision that never came to an end (it failed, or the process died
        between the write and its note) and that this run's plan no longer holds.

        Nothing is written again here: this run's plan does not want the write. When the
        incident is as decided by us, the note that explains it is made sure of (found by its
        marker, or written with the recorded evidence); otherwise it is closed as state_changed.
        """
        claim, intent_id = self._begin(decision)
        try:
            if not claim.ok:
                outcome = Outcome(decision, Result.NOT_CLAIMED, claim.why)
            elif decision.action is Action.NOTE:
                outcome = (Outcome(decision, Result.ALREADY_DONE, "an earlier run's note, found")
                           if has_note(self.client, decision) else
                           Outcome(decision, Result.STATE_CHANGED,
                                   "an earlier run's note, not found and no longer planned"))
            else:
                current = self.client.incident(decision.incident_id)
                if as_decided(decision, current) and made_by(
                        decision, current, self.token_id) in ("us", "unknown"):
                    ensure_note(self.client, decision, None, check_first=True)
                    outcome = Outcome(decision, Result.ALREADY_DONE,
                                      "an earlier run's decision, finished")
                else:
                    outcome = Outcome(decision, Result.STATE_CHANGED,
                                      f"an earlier run's decision, no longer planned: "
                                      f"{describe(current)}")
        except Exception as exc:  # noqa: BLE001 - recorded; the next run tries again
            logger.warning("incident %s: finishing %s failed: %s", decision.incident_id,
                           decision.action.value, error_detail(exc))
            outcome = Outcome(decision, Result.FAILED, error_detail(exc))
        self.ledger.record_result(intent_id, outcome.result.value, outcome.detail)
        return outcome


class ChunkStates:
    """The safety reads of one chunk: each incident's current state, read seconds before its
    write, in as few requests as the data allows.

    When the plan's incidents are known (their `date`), the chunk's pending incidents are
    listed in one go: `date_after`/`date_before` around their dates and the statuses their
    preconditions allow, 100 a page. That listing is used only when it costs fewer requests
    than one read per incident (estimated from the plan's own incidents in that window), and
    each state only while it is at most `max_read_age` seconds old: older, the rest of the
    chunk is listed again. An incident the listing does not return (it no longer matches, e.g.
    a person resolved it), one without a date, and the second decision on one incident (after
    our own first write) are read alone. The checks made on the state are the same either way.
    Before any of that, a scoped run's own read of the incident (`apply_plan`'s `read_at`) is
    the state while it is at most `max_read_age` seconds old.
    """

    def __init__(self, writer: Writer, decisions: Sequence[Decision]):
        self.writer = writer
        self.pending = list(dict.fromkeys(d.incident_id for d in decisions))
        self.first: set[int] = set()
        self.states: dict[int, Any] = {}
        self.read_at = float("-inf")
        self.statuses = _statuses(decisions)
        self.lock = threading.Lock()

    def current(self, incident_id: int) -> tuple[Any, float]:
        with self.lock:
            first = incident_id not in self.first
            self.first.add(incident_id)
            state = None
            if first:
                fresh = self.writer.fresh.pop(incident_id, None)
                if (fresh is not None
                        and time.monotonic() - self.writer.fresh_at <= self.writer.max_read_age):
                    return fresh, self.writer.fresh_at
                if time.monotonic() - self.read_at > self.writer.max_read_age:
                    self._list(incident_id)
                state = self.states.pop(incident_id, None)
            read_at = self.read_at
        if state is not None:
            return state, read_at
        return self.writer.client.incident(incident_id), time.monotonic()

    def _list(self, asking: int) -> None:
        """List the chunk's incidents still to be read (and `asking`, being read now)."""
        seen = self.writer.seen
        ids = [i for i in self.pending if i in seen and (i not in self.first or i == asking)]
        self.states = {}
        if len(ids) < 2:
            self.read_at = time.monotonic()
            return
        low = min(seen[i][0] for i in ids) - timedelta(seconds=1)
        high = max(seen[i][0] for i in ids) + timedelta(seconds=1)
        # The statuses to list: those the chunk's incidents had when planned, within what the
        # preconditions allow. One that changed status since is not listed, and is read alone.
        statuses = {seen[i][1] for i in ids}
        if self.statuses:
            statuses &= self.statuses
        expected = sum(1 for date, status in seen.values()
                       if low <= date <= high and status in statuses)
        pages = -(-expected // PER_PAGE)
        if not statuses or pages >= len(ids):
            self.read_at = time.monotonic()  # one read each is cheaper: not looked at again soon
            return
        filters: dict[str, Any] = {**self.writer.read_filters, "date_after": low,
                                   "date_before": high, "status": sorted(statuses)}
        wanted = set(ids)
        started = time.monotonic()
        # Never more pages than reads it saves (the plan's incidents may not be all the
        # workspace holds in that window): what is left unlisted is read alone.
        try:
            pages = self.writer.client.incidents(per_page=PER_PAGE, **filters).pages()
            for number, page in enumerate(pages):
                for incident in page:
                    if incident.id in wanted:
                        self.states[incident.id] = incident
                if number + 2 >= len(ids) or wanted <= set(self.states):
                    break
        except Exception as exc:  # noqa: BLE001 - each incident is then read alone
            logger.warning("batched safety read failed (%s): reading incidents one by one",
                           error_detail(exc))
            self.states = {}
            started = time.monotonic()
        self.read_at = started


def _statuses(decisions: Sequence[Decision]) -> set[str]:
    """The statuses any of the chunk's preconditions allows (empty: any status)."""
    found: set[str] = set()
    for decision in decisions:
        if not decision.precondition.statuses:
            return set()
        found |= set(decision.precondition.statuses)
    return found


def _foreign_edit(logs: Sequence[Any], decision: Decision, token_id: str | None,
                  *, gap: float) -> Any:
    """The first change to the decision's incident by anyone but us, made in the `gap` seconds
    before our own write's audit entry (found by our token and the incident), or None."""
    target = str(decision.incident_id)
    # A share link's entry targets the link's token; its incident is `data.issue_id`.
    on_incident = [log for log in logs if target in (log.target_ids or [])
                   or str((log.data if isinstance(log.data, dict) else {}).get("issue_id"))
                   == target]
    ours = [log for log in on_incident
            if log.api_token_id == token_id and "note" not in (log.event_name or "")]
    if not ours:
        return None
    mine = max(ours, key=lambda log: log.id)
    for log in sorted(on_incident, key=lambda log: log.id, reverse=True):
        if log.id >= mine.id or log.api_token_id == token_id:
            continue
        if (log.action_type or "").upper() == "READ" or "note" in (log.event_name or ""):
            continue
        if (mine.date - log.date).total_seconds() <= gap:
            return log
    return None

