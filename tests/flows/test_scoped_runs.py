"""Playbooks scoped to incidents (issue 16): a run given `incident_ids` reads only those
incidents, decides as the full sweep does for them, and costs requests in proportion to the
ids, not to the workspace. Counted at the sandbox (every request it serves)."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from flows.auto_ignore import auto_ignore
from flows.commit_author_triage import commit_author_triage
from flows.departed_developers import departed_developers as departed
from tasks.decide.auto_ignore import AutoIgnorePolicy
from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy
from tasks.decide.departed_developers import DepartedDevelopersPolicy
from tests.fixtures.harness import run_flow

pytestmark = [pytest.mark.slapd, pytest.mark.prefect, pytest.mark.slow]

FLOWS = {
    "triage": (commit_author_triage, CommitAuthorTriagePolicy()),
    "auto-ignore": (auto_ignore, AutoIgnorePolicy()),
    "departed": (departed, DepartedDevelopersPolicy()),
}


class RequestCounter:
    """Every request the sandbox serves, by method and path."""

    def __init__(self, box):
        self.seen: Counter[tuple[str, str]] = Counter()
        self.hooks = []
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            self.hooks.append(box.before(method, r"/v1/.*", self._count(method), times=None))

    def _count(self, method):
        def count(box):
            self.seen[(method, "any")] += 1
        return count

    def total(self) -> int:
        return sum(self.seen.values())

    def reset(self) -> None:
        self.seen.clear()


def decisions(result) -> dict[int, list[tuple[str, dict]]]:
    found: dict[int, list[tuple[str, dict]]] = {}
    for row in result["plan"]:
        found.setdefault(row["incident_id"], []).append(
            (row["action"], json.loads(row["arguments"]))
        )
    return found


def skips(result) -> dict[int, str]:
    return {s["incident_id"]: s["reason"] for s in result.get("skipped") or []}


def run(flow_fn, policy, **parameters):
    state, result = run_flow(flow_fn, policy=policy, dry_run=True, max_actions=5000, **parameters)
    assert state.is_completed(), state.message
    return result


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_a_scoped_run_decides_as_the_sweep_and_costs_per_id(playbook_env, name):
    flow_fn, policy = FLOWS[name]
    box = playbook_env.sandbox
    counter = RequestCounter(box)
    full = run(flow_fn, policy)
    sweep_requests = counter.total()
    planned = decisions(full)
    assert planned, f"the sandbox should give {name} something to do"

    # Ids the sweep acted on, ids it skipped or ignored, and one that does not exist.
    acted = sorted(planned)[:6]
    others = sorted(i for i in box.store.incidents if i not in planned)[:4]
    chosen = acted + others + [99_999_999]

    counts = {}
    for size in (len(chosen) // 2, len(chosen)):
        ids = chosen[:size]
        counter.reset()
        scoped = run(flow_fn, policy, incident_ids=ids)
        counts[size] = counter.total()
        # The same decisions as the sweep's, for these ids exactly.
        assert decisions(scoped) == {i: d for i, d in planned.items() if i in ids}
        assert {i: r for i, r in skips(scoped).items()} == {
            i: r for i, r in skips(full).items() if i in ids
        }
    small, large = sorted(counts)
    per_id = (counts[large] - counts[small]) / (large - small)
    # One GET per incident (its occurrences come with it); a few fixed requests (token,
    # members) around them.
    assert per_id <= 1.5, counts
    assert counts[small] <= small * 1.5 + 6, counts
    assert counts[large] < sweep_requests / 2 or sweep_requests < 40, (counts, sweep_requests)


def test_a_scoped_auto_ignore_rechecks_only_its_ids(playbook_env):
    """The recheck (reopen what we ignored once its reason is gone) is scoped too."""
    box = playbook_env.sandbox
    policy = AutoIgnorePolicy()
    state, result = run_flow(auto_ignore, policy=policy, dry_run=False, max_actions=5000)
    assert state.is_completed(), state.message
    ignored = sorted(i for i, d in decisions(result).items())
    assert len(ignored) >= 2
    # Both ignored incidents get a new occurrence outside any test path: the recheck would
    # reopen both; a run scoped to the first reopens the first only.
    for incident_id in ignored[:2]:
        box.events.new_occurrence(incident_id, filepath="src/app/settings.py")
    scoped = run(auto_ignore, policy, incident_ids=[ignored[0]])
    assert decisions(scoped) == {ignored[0]: [("reopen", {})]} or list(decisions(scoped)) == [
        ignored[0]
    ]
    sweep = run(auto_ignore, policy)
    assert {ignored[0], ignored[1]} <= set(decisions(sweep))


def test_scoped_runs_share_the_token_and_member_list_for_a_few_minutes(playbook_env):
    """An event's scoped runs come seconds apart: the second and later ones reuse the token's
    description and the member list (a Prefect task cache keyed by the API and a digest of the
    key); a full sweep reads both every time, as before."""
    box = playbook_env.sandbox
    seen: Counter[str] = Counter()
    for path in (r"/v1/api_tokens/self", r"/v1/members"):
        box.before("GET", path, lambda _b, path=path: seen.update([path]), times=None)
    policy = CommitAuthorTriagePolicy()
    # A TRIGGERED one: a scoped triage run with nothing to assign reads no member list.
    incident_id = next(i for i, v in box.store.incidents.items() if v["status"] == "TRIGGERED")
    run(commit_author_triage, policy, incident_ids=[incident_id])
    first = dict(seen)
    assert first == {r"/v1/api_tokens/self": 1, r"/v1/members": 1}, first
    run(commit_author_triage, policy, incident_ids=[incident_id])
    run(departed, DepartedDevelopersPolicy(), incident_ids=[incident_id])
    assert dict(seen) == first  # both taken from the first run's reads
    run(commit_author_triage, policy)  # a sweep: both read again
    assert dict(seen) == {r"/v1/api_tokens/self": 2, r"/v1/members": 2}, dict(seen)
