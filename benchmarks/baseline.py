"""The notebook-style baseline, for comparison with the playbooks' request counts.

The seed notebook (/work/shared/seed/gitguardian-api-cheat-sheet.txt) works incident by
incident: list the incidents, then "retrieve a secret incident" with its occurrences for each
one, then act on it. This module does exactly that through our client (so requests are counted
the same way), on the same filtered listings as our playbooks, and with the same actions.

It is generous to the notebook on purpose: listings use 100 items per page (the notebook
relies on the API's default of 20), and each action counts as one write (the notebook writes
no explanatory note). A baseline run reads only; the writes are counted from the plan, not
sent, so the same workspace can serve both sides of the comparison.

    from benchmarks.baseline import run_baseline
    counts = run_baseline(client, "commit-author-triage", actions=1986)
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

DETAIL = "GET /v1/incidents/secrets/{id}"
WRITE = "POST (notebook writes, one per action)"

# The listings each playbook starts from, as (status, extra filters): the same as ours.
LISTINGS: dict[str, list[dict[str, Any]]] = {
    "departed-developer-reassignment": [dict(status="ASSIGNED")],
    "test-directory-auto-ignore": [
        dict(status=status, validity="invalid") for status in ("TRIGGERED", "ASSIGNED")
    ],
    "commit-author-triage": [dict(status="TRIGGERED")],
}
NEEDS_MEMBERS = {"departed-developer-reassignment", "commit-author-triage"}


def notebook_reads(client: Any, listings: Iterable[dict[str, Any]], *, members: bool) -> int:
    """List, then one detail call (with up to 20 occurrences) per incident. Returns incidents."""
    if members:
        for _ in client.members(per_page=100).pages():
            pass
    seen = 0
    for filters in listings:
        for page in client.incidents(per_page=100, **filters).pages():
            for incident in page:
                client.incident(incident.id, with_occurrences=20)
                seen += 1
    return seen


def run_baseline(client: Any, playbook: str, *, actions: int) -> dict[str, int]:
    """Requests the notebook approach makes for `playbook`, by "METHOD /path", writes included."""
    before = Counter(client.request_counts)
    notebook_reads(client, LISTINGS[playbook], members=playbook in NEEDS_MEMBERS)
    counts = Counter(client.request_counts)
    counts.subtract(before)
    result = {key: n for key, n in counts.items() if n}
    if actions:
        result[WRITE] = actions
    return result
