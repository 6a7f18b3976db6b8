"""Helpers of the bulk-remediation decide tests (test_bulk_remediation.py,
test_bulk_selection.py)."""
from __future__ import annotations

from datetime import timedelta

from tasks.decide.bulk_remediation import BulkAction, BulkRequest, BulkSelection
from tests.decide.factories import EPOCH

NOW = EPOCH + timedelta(days=100)


def request(
    action: dict | None = None, reason: str = "rotation INC-42 done", **selection
) -> BulkRequest:
    return BulkRequest(
        selection=BulkSelection(**selection),
        action=BulkAction(**(action or {"kind": "note"})),
        reason=reason,
    )


def aged(inc, days: float, **update):
    return inc.model_copy(update={"date": NOW - timedelta(days=days), **update})


def ids(items) -> list[int]:
    return [i.id for i in items]

