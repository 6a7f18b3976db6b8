"""The selection against the sandbox API: each filter and client-side condition selects exactly
the incidents a direct reading of the workspace says it should. Read-only (the shared sandbox).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from clients.gitguardian import GitGuardianClient
from tasks.bulk_remediation import fetch_selection
from tasks.decide.bulk_remediation import (
    BulkAction,
    BulkRequest,
    BulkSelection,
    check_request,
    select,
)
from tasks.decide.paths import is_test_path
from tasks.fetch import fetch_occurrences


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def workspace(sandbox) -> dict[str, Any]:
    w = sandbox.workspace
    occurrences: dict[int, list[dict]] = {}
    for o in w.occurrences:
        occurrences.setdefault(o["incident_id"], []).append(o)
    assigned = sorted({i["assignee_email"] for i in w.incidents if i["assignee_email"]})
    authors = sorted({o["author_info"] for o in w.occurrences if o["author_info"]})
    return {"now": w.now, "incidents": w.incidents, "occurrences": occurrences,
            "assignee": assigned[len(assigned) // 2], "author": authors[len(authors) // 3],
            "source": w.occurrences[0]["source"]["full_name"]}


def _occ(ws, incident) -> list[dict]:
    return ws["occurrences"].get(incident["id"], [])


# Each case: the selection's fields, and the predicate over the raw workspace that must agree.
CASES: dict[str, tuple[Callable[[dict], dict], Callable[[dict, dict], bool]]] = {
    "status": (lambda ws: {"status": ["IGNORED"]}, lambda ws, i: i["status"] == "IGNORED"),
    "severity": (
        lambda ws: {"severity": ["critical", "low"]},
        lambda ws, i: i["severity"] in ("critical", "low"),
    ),
    "validity": (lambda ws: {"validity": ["invalid"]}, lambda ws, i: i["validity"] == "invalid"),
    "detector_group_name": (
        lambda ws: {"detector_group_name": "aws_iam"},
        lambda ws, i: i["detector"]["detector_group_name"] == "aws_iam",
    ),
    "assignee_emails": (
        lambda ws: {"assignee_emails": [ws["assignee"].upper()]},
        lambda ws, i: (i["assignee_email"] or "").casefold() == ws["assignee"].casefold(),
    ),
    "risk_score": (
        lambda ws: {"risk_score_min": 40, "risk_score_max": 60},
        lambda ws, i: i["risk_score"] is not None and 40 <= i["risk_score"] <= 60,
    ),
    "api_filters_tags": (
        lambda ws: {"api_filters": {"tags": ["TEST_FILE"]}},
        lambda ws, i: "TEST_FILE" in i["tags"],
    ),
    "path_globs": (
        lambda ws: {"path_globs": ["**/tests/**", "**/test/**"]},
        lambda ws, i: (
            bool(_occ(ws, i))
            and all(is_test_path(o["filepath"], ["**/tests/**", "**/test/**"]) for o in _occ(ws, i))
        ),
    ),
    "author_emails": (
        lambda ws: {"author_emails": [ws["author"]]},
        lambda ws, i: any(
            (o["author_info"] or "").casefold() == ws["author"].casefold() for o in _occ(ws, i)
        ),
    ),
    "source_names": (
        lambda ws: {"source_names": [ws["source"]]},
        lambda ws, i: any(o["source"]["full_name"] == ws["source"] for o in _occ(ws, i)),
    ),
    "age": (
        lambda ws: {"min_age_days": 30, "max_age_days": 90},
        lambda ws, i: 30 <= (ws["now"] - _time(i["date"])) / timedelta(days=1) <= 90,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_condition_selects_what_the_workspace_says(case, sandbox, workspace):
    fields, predicate = CASES[case]
    request = BulkRequest(
        selection=BulkSelection(**fields(workspace)),
        action=BulkAction(kind="note"),
        reason="selection test",
    )
    check_request(request)
    client = GitGuardianClient(sandbox.url, sandbox.tokens["read"], requests_per_minute=None)
    incidents = fetch_selection.fn(client, request)
    occurrences = fetch_occurrences.fn(client) if request.selection.needs_occurrences else {}
    chosen, _ = select(incidents, occurrences, request.selection, now=workspace["now"])
    expected = sorted(i["id"] for i in workspace["incidents"] if predicate(workspace, i))
    assert expected, f"the workspace has no incident for {case}: the test would prove nothing"
    assert expected != sorted(i["id"] for i in workspace["incidents"])
    assert [i.id for i in chosen] == expected
