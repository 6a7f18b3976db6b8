"""The write path alone (`tasks.act.apply_plan`), measured from outside: used by
benchmarks/playbooks.py.

`apply_plan` is called with a client and a ledger wrapped here (passed in, nothing patched) so
that the write path itself carries no benchmark code:
- `TimedClient` timestamps every call the write path makes (client's clock,
  `time.perf_counter`), from which the **residual window** of each applied action: from the end
  of its safety read (`GET /v1/incidents/secrets/{id}`) to the end of its write. A person's edit
  landing in that window is overwritten; the after-write audit-log check can only report it;
- `TimedLedger` (and the lease it hands out) times the ledger's work per decision: the claim
  under the lease, the intent and the result;
- requests are counted by endpoint, so audit-log reads per chunk and requests per action come
  from the client's own counts.
Two ways, the same plan on the same fresh state: plain (`run_chunk=None`) and through Prefect
(`run_chunk=tasks.playbook._run_chunk`, one task run per chunk, inside a flow).
"""
from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from typing import Any

WRITES = ("assign", "unassign", "resolve", "ignore", "reopen", "share")
AUDIT = "GET /v1/audit_logs"
DETAIL = "GET /v1/incidents/secrets/{id}"


class TimedClient:
    """A GitGuardian client whose calls are timestamped: (call, incident, start, end, thread, ok).

    Everything else is the wrapped client's own (counts, base URL, other methods)."""

    def __init__(self, client: Any):
        self._client = client
        self.events: list[tuple[str, Any, float, float, int, bool]] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._client, name)
        if name in WRITES or name in ("incident", "add_note", "notes"):
            return self._timed(name, value)
        if name == "audit_logs":
            return self._timed_listing(value)
        return value

    def _timed(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            target = args[0] if args else kwargs.get("incident_id")
            started, ok = time.perf_counter(), False
            try:
                result = method(*args, **kwargs)
                if name == "notes":
                    result = list(result)  # a lazy listing: its requests happen here
                ok = True
                return result
            finally:
                self.events.append((name, target, started, time.perf_counter(),
                                    threading.get_ident(), ok))
        return call

    def _timed_listing(self, method: Callable[..., Any]) -> Callable[..., Any]:
        """A listing whose `.pages()` timestamps each page's request."""
        events = self.events

        class Timed:
            def __init__(self, listing: Any):
                self._listing = listing

            def pages(self) -> Iterator[Any]:
                iterator = self._listing.pages()
                while True:
                    started = time.perf_counter()
                    try:
                        page = next(iterator)
                    except StopIteration:
                        return
                    finally:
                        events.append(("audit_page", None, started, time.perf_counter(),
                                       threading.get_ident(), True))
                    yield page

            def __iter__(self) -> Iterator[Any]:
                for page in self.pages():
                    yield from page

        return lambda *args, **kwargs: Timed(method(*args, **kwargs))

    def residual_windows(self) -> list[float]:
        """Seconds from the end of each successful write's last safety read of its incident (in
        the same thread, before the write began) to the end of the write."""
        reads: dict[tuple[Any, int], list[float]] = defaultdict(list)
        for name, target, _, end, thread, ok in self.events:
            if name == "incident" and ok:
                reads[(target, thread)].append(end)
        windows = []
        for name, target, start, end, thread, ok in self.events:
            if name in WRITES and ok:
                before = [t for t in reads[(target, thread)] if t <= start]
                if before:
                    windows.append(end - max(before))
        return windows

    def seconds(self, name: str) -> list[float]:
        return [end - start for n, _, start, end, _, _ in self.events if n == name]


class TimedLease:
    def __init__(self, lease: Any, times: dict[str, list[float]]):
        self._lease, self._times = lease, times

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lease, name)

    def claim(self, decision_id: str) -> Any:
        started = time.perf_counter()
        try:
            return self._lease.claim(decision_id)
        finally:
            self._times["claim"].append(time.perf_counter() - started)


class TimedLedger:
    """A ledger whose per-decision work is timed; the lease it takes times its claims."""

    def __init__(self, ledger: Any):
        self._ledger = ledger
        self.times: dict[str, list[float]] = defaultdict(list)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)

    def _timed(self, key: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            self.times[key].append(time.perf_counter() - started)

    def record_plan(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("plan", self._ledger.record_plan, *args, **kwargs)

    def unfinished(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("unfinished", self._ledger.unfinished, *args, **kwargs)

    def record_intent(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("intent", self._ledger.record_intent, *args, **kwargs)

    def record_result(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed("result", self._ledger.record_result, *args, **kwargs)

    def lease(self, *args: Any, **kwargs: Any) -> Any:
        lease = self._timed("lease", self._ledger.lease, *args, **kwargs)
        return TimedLease(lease, self.times)


def plan_from_rows(playbook: str, rows: list[dict[str, Any]]) -> Any:
    """The dry run's plan, from its result rows (as the ledger rebuilds decisions: without
    preconditions, which on the same fresh state hold anyway and cost no request)."""
    import json

    from tasks.act import decision_from_row
    from tasks.decide.plan import Plan

    decisions = []
    for row in rows:
        decision = decision_from_row({**row, "playbook": playbook,
                                      "arguments": json.loads(row["arguments"])})
        if decision is None:
            raise ValueError(f"cannot rebuild decision {row.get('decision_id')}")
        decisions.append(decision)
    return Plan(playbook, tuple(decisions))


def apply_timed(plan: Any, *, client: Any, ledger: Any, note: Callable[[Any], str] | None,
                prefect: bool, workers: int, chunk_size: int) -> dict[str, Any]:
    """Apply `plan` through `act.apply_plan` with timed wrappers; the figures of that run."""
    from tasks import act

    token = client.token_info()
    timed_client, timed_ledger = TimedClient(client), TimedLedger(ledger)
    run_id = ledger.start_run(plan.playbook, dry_run=False, parameters={"benchmark": True})
    options = dict(client=timed_client, ledger=timed_ledger, run_id=run_id, dry_run=False,
                   max_actions=len(plan), note=note, token_id=token.id,
                   lease_key=act.lease_name(plan.playbook, client.base_url,
                                            getattr(token, "workspace_id", None)),
                   workers=workers, chunk_size=chunk_size)
    before = Counter(client.request_counts)
    holder: dict[str, Any] = {}
    started = time.perf_counter()
    if prefect:
        from prefect import flow

        from tasks.playbook import _run_chunk

        @flow(name="benchmark-write-path", log_prints=False)
        def write_path() -> None:
            # The report is kept here, not returned: Prefect would walk it looking for futures.
            inner = time.perf_counter()
            holder["report"] = act.apply_plan(plan, run_chunk=_run_chunk, **options)
            holder["inner"] = time.perf_counter() - inner

        write_path()
    else:
        holder["report"] = act.apply_plan(plan, **options)
    wall = time.perf_counter() - started
    ledger.end_run(run_id, "completed", {})
    report = holder["report"]
    requests = Counter(client.request_counts) - before
    decisions = max(1, len(plan))
    chunks = max(1, math.ceil(len(plan) / chunk_size))
    per_decision = {key: sum(timed_ledger.times[key]) / decisions
                    for key in ("claim", "intent", "result")}
    return {
        "prefect": prefect,
        "seconds": wall,
        "seconds_apply": holder.get("inner", wall),
        "counts": report.counts,
        "detection": report.detection,
        "decisions": len(plan),
        "chunks": chunks,
        "requests": dict(requests),
        "requests_per_action": sum(requests.values()) / decisions,
        "windows": timed_client.residual_windows(),
        "ledger_per_decision_s": per_decision,
        "ledger_op_p95_s": {key: _quantile(timed_ledger.times[key], 0.95)
                            for key in ("claim", "intent", "result")},
        "lease_s": sum(timed_ledger.times["lease"]),
        "plan_record_s": sum(timed_ledger.times["plan"]),
        "audit_requests_per_chunk": requests.get(AUDIT, 0) / chunks,
        "audit_seconds_per_chunk": sum(timed_client.seconds("audit_page")) / chunks,
        "safety_read_s_mean": _mean(timed_client.seconds("incident")),
        "write_s_mean": _mean([s for w in WRITES for s in timed_client.seconds(w)]),
        "note_s_mean": _mean(timed_client.seconds("add_note")),
    }


def summary(run: dict[str, Any], *, latency_ms: int, workers: int) -> dict[str, Any]:
    """Residual window, per-action time against the floor, ledger and audit costs (ms)."""
    windows = sorted(run["windows"])
    floor_ms = run["requests_per_action"] * latency_ms / workers
    per_action_ms = 1000 * run["seconds_apply"] / max(1, run["decisions"])
    return {
        "windows": len(windows),
        "window_p50_ms": round(1000 * _quantile(windows, 0.5), 1),
        "window_p95_ms": round(1000 * _quantile(windows, 0.95), 1),
        "window_max_ms": round(1000 * (windows[-1] if windows else 0.0), 1),
        "per_action_ms": round(per_action_ms, 1),
        "floor_ms": round(floor_ms, 1),
        "per_action_over_floor": round(per_action_ms / floor_ms, 2) if floor_ms else None,
        "requests_per_action": round(run["requests_per_action"], 2),
        "ledger_ms_per_decision": round(1000 * sum(run["ledger_per_decision_s"].values()), 2),
        "ledger_ms_by_step": {k: round(1000 * v, 2)
                              for k, v in run["ledger_per_decision_s"].items()},
        "audit_requests_per_chunk": round(run["audit_requests_per_chunk"], 2),
        "audit_ms_per_chunk": round(1000 * run["audit_seconds_per_chunk"], 1),
    }


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0
