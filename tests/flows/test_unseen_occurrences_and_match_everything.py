"""End to end on the sandbox under a real local Prefect server: all occurrences seen or no
decision, and a selection that matches everything judged by its behaviour.

Each case is a flow run against a fresh sandbox whose data was bent into an edge case: an
occurrence tagged PUBLICLY_EXPOSED (the veto-tag filter), a null `occurrences_count`, a date
bound before the workspace's first incident."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from flows.auto_ignore import auto_ignore
from flows.bulk_remediation import bulk_remediation
from tasks.decide.auto_ignore import AutoIgnorePolicy
from tasks.decide.bulk_remediation import BulkAction, BulkRequest, BulkSelection, RefusedRequest
from tests.fixtures.harness import point_at_sandbox, run_flow

pytestmark = [pytest.mark.prefect]


@pytest.fixture
def use(prefect_server, monkeypatch, tmp_path):
    """Point the flows at a sandbox; the ledger in a temp SQLite file; no directory."""

    def point(box) -> None:
        point_at_sandbox(monkeypatch, box, tmp_path / "ledger.sqlite")

    return point


def skipped(result) -> dict[int, tuple[str, str]]:
    return {s["incident_id"]: (s["reason"], s["evidence"]) for s in result["skipped"]}


def planned(result) -> set[int]:
    return {d["incident_id"] for d in result["plan"]}


# --------------------------------------------------------------------------- auto-ignore


def test_auto_ignore_says_veto_or_unknown_count_not_unseen(use, fresh_sandbox):
    use(fresh_sandbox)
    state, before = run_flow(auto_ignore, policy=AutoIgnorePolicy(), dry_run=True)
    assert state.is_completed(), state.message
    vetoed, uncounted = sorted(planned(before))[:2]
    store = fresh_sandbox.store
    with store.lock:
        # One occurrence of an ignorable incident is tagged public (the incident is not), and
        # another incident's count is null, as the API may answer.
        store.occurrences_by_incident[vetoed][0]["tags"] = ["PUBLICLY_EXPOSED"]
        store.incidents[uncounted]["occurrences_count"] = None

    state, after = run_flow(auto_ignore, policy=AutoIgnorePolicy(), dry_run=True)
    assert state.is_completed(), state.message
    assert planned(after) == planned(before) - {vetoed, uncounted}
    reasons = skipped(after)
    # Before issue 13: ("occurrences_unseen", "0 of 1 occurrences seen") for both.
    first = store.occurrences_by_incident[vetoed][0]["id"]
    assert reasons[vetoed][0] == "veto_tag"
    assert reasons[vetoed][1].startswith(f"occurrence {first} tagged PUBLICLY_EXPOSED")
    assert reasons[uncounted][0] == "occurrences_count_unknown"


# --------------------------------------------------------------------------- bulk


def bulk(selection: dict, **extra: Any) -> BulkRequest:
    return BulkRequest(selection=BulkSelection(**selection), action=BulkAction(kind="note"),
                       reason="Issue 13 check", **extra)


def test_bulk_refuses_a_date_bound_that_excludes_nothing_in_the_workspace(use, fresh_sandbox):
    use(fresh_sandbox)
    before = fresh_sandbox.state()
    dates = sorted(i["date"] for i in fresh_sandbox.workspace.incidents)
    oldest = min(dates)[:10]  # "YYYY-MM-DD", after 2017: only the workspace can tell
    day_before = date.fromisoformat(oldest) - timedelta(days=1)
    state, error = run_flow(bulk_remediation, dry_run=True,
                            policy=bulk({"api_filters": {"date_after": day_before.isoformat()}}))
    assert state.is_failed() and isinstance(error, RefusedRequest), (state.message, error)
    assert "exclude no incident of this workspace" in str(error)
    assert "confirm_all" in str(error)
    assert fresh_sandbox.state() == before

    # A bound that cuts the workspace runs; confirm_all lets the useless one through.
    middle = dates[len(dates) // 2][:10]
    state, result = run_flow(bulk_remediation, dry_run=True,
                             policy=bulk({"api_filters": {"date_after": middle}}))
    assert state.is_completed(), state.message
    assert 0 < len(result["plan"]) < len(dates)
    state, result = run_flow(bulk_remediation, dry_run=True, max_actions=1000,
                             policy=bulk({"api_filters": {"date_after": day_before.isoformat()}},
                                         confirm_all=True))
    assert state.is_completed(), state.message
    assert len(result["plan"]) == len(dates)


@pytest.mark.parametrize("selection", [
    {"path_globs": ["**/*"]},
    {"api_filters": {"date_after": "1970-01-01"}},
])
def test_bulk_refuses_match_everything_before_any_request(use, sandbox, selection):
    # Before issue 13: 185 and 190 of 190 open incidents planned.
    use(sandbox)
    state, error = run_flow(bulk_remediation, dry_run=True, policy=bulk(selection))
    assert state.is_failed() and isinstance(error, RefusedRequest), (state.message, error)
    assert "confirm_all" in str(error)


def test_bulk_path_mode_all_skips_an_incident_with_a_null_count(use, fresh_sandbox):
    use(fresh_sandbox)
    selection = {"status": ["TRIGGERED", "ASSIGNED"], "path_globs": ["**/tests/**"]}
    state, before = run_flow(bulk_remediation, dry_run=True, policy=bulk(selection))
    assert state.is_completed(), state.message
    chosen = sorted(planned(before))
    assert len(chosen) >= 2, "the sandbox should hold incidents whose every path is in tests/"
    uncounted, short = chosen[0], chosen[-1]
    store = fresh_sandbox.store
    with store.lock:
        store.incidents[uncounted]["occurrences_count"] = None
        store.incidents[short]["occurrences_count"] += 1  # one the API does not return

    state, after = run_flow(bulk_remediation, dry_run=True, policy=bulk(selection))
    assert state.is_completed(), state.message
    assert planned(after) == set(chosen) - {uncounted, short}
    reasons = skipped(after)
    assert reasons[uncounted][0] == "occurrences_count_unknown"
    count = store.incidents[short]["occurrences_count"]
    assert reasons[short] == ("occurrences_unseen", f"{count - 1} of {count} occurrences returned")
