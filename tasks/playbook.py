"""What every playbook run shares: the client, the scope check, the ledger run, and the end.

    with Playbook(NAME, scopes=..., dry_run=..., max_actions=..., parameters=...) as run:
        ... fetch, enrich, decide ...
        return run.execute(plan, note=...)

`execute` applies the plan through the one write path and returns the flow's result: a dict
(summary, plan, outcomes) when every write succeeded, else a Failed state carrying the same dict,
so the run's final state says what failed and the CLI can still print the table.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prefect.runtime import flow_run
from prefect.states import Failed

from tasks import fetch, settings
from tasks.plan import Decision, Plan
from tasks.run import RunReport, execute_plan


class ApiUnavailable(RuntimeError):
    """GitGuardian could not be reached (or answered only server errors) at the run's start."""


class Playbook:
    def __init__(
        self,
        name: str,
        *,
        scopes: Iterable[str],
        dry_run: bool,
        max_actions: int,
        parameters: dict[str, Any],
        client: Any = None,
        ledger: Any = None,
    ):
        if max_actions < 0:
            raise ValueError("max_actions must be 0 or more")
        self.name, self.scopes, self.dry_run, self.max_actions = name, tuple(scopes), dry_run, max_actions
        self.parameters = {**parameters, "dry_run": dry_run, "max_actions": max_actions}
        self.client = client
        self.ledger = ledger
        self.run_id: str | None = None
        self.report: RunReport | None = None

    def __enter__(self) -> "Playbook":
        from clients.gitguardian import ConnectionFailed, ServerError

        self.client = self.client or settings.gitguardian_client()
        try:
            scopes = self.scopes if not self.dry_run else _read_scopes(self.scopes)
            fetch.check_scopes(self.client, scopes)
        except (ConnectionFailed, ServerError) as exc:
            # The first call of every run: say plainly which part is down (the URL holds no key).
            where = getattr(self.client, "base_url", "")
            raise ApiUnavailable(
                f"GitGuardian API unavailable at {where}: {exc}. Nothing was written."
            ) from None
        self.ledger = self.ledger or settings.ledger()
        self.run_id = self.ledger.start_run(
            self.name, dry_run=self.dry_run, parameters=self.parameters, flow_run_id=_flow_run_id()
        )
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is not None and self.run_id is not None and self.report is None:
            self.ledger.end_run(self.run_id, "failed", {"error": type(exc).__name__})

    def execute(self, plan: Plan, *, note: Callable[[Decision], str] | None = None) -> Any:
        self.report = report = execute_plan(
            plan, client=self.client, ledger=self.ledger, run_id=self.run_id,
            dry_run=self.dry_run, max_actions=self.max_actions, note=note,
        )
        result = {
            "playbook": self.name,
            "dry_run": self.dry_run,
            "summary": report.summary(),
            "counts": report.counts,
            "plan": [d.row() for d in plan.decisions],
            "skipped": [s.row() for s in plan.skips],
            "outcomes": [o.row() for o in report.outcomes],
            "requests": dict(getattr(self.client, "request_counts", {})),
        }
        state = "failed" if report.failed else "completed"
        self.ledger.end_run(self.run_id, state, {"counts": report.counts, "planned": len(plan)})
        if report.failed:
            ids = ", ".join(str(o.decision.incident_id) for o in report.failed[:20])
            return Failed(
                message=f"{len(report.failed)} of {len(report.outcomes)} writes failed "
                f"(incidents {ids}); the others were applied. See the outcomes artifact.",
                data=result,
            )
        return result


def _read_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """A dry run writes nothing: it only needs the read side of each scope."""
    return tuple(s.replace(":write", ":read").replace(":share", ":read") for s in scopes)


def _flow_run_id() -> str | None:
    value = flow_run.id
    return str(value) if value else None
