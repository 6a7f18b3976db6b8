"""All occurrences seen, or no decision. Pure.

A decision that rests on "every occurrence" (all in test paths, every author left, every path
matches a bulk glob) needs the incident's `occurrences_count` to be known and equal to the
occurrences the run saw, counted before any filter of the flow's own (a flow that drops an
occurrence, e.g. for a veto tag, says so in its own skip reason). Otherwise the incident is a
skip whose reason says which:
- `occurrences_count_unknown`: the API gave no `occurrences_count`, so nobody can tell that
  the occurrences returned are all of them;
- `occurrences_unseen`: fewer returned than the count ("2 of 3 occurrences returned");
- `occurrences_count_mismatch`: more returned than the count (the count is stale).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

OCCURRENCES_COUNT_UNKNOWN = "occurrences_count_unknown"
OCCURRENCES_UNSEEN = "occurrences_unseen"
OCCURRENCES_COUNT_MISMATCH = "occurrences_count_mismatch"


@dataclass(frozen=True)
class Gap:
    """Why the occurrences seen are not known to be all of them: a skip reason and evidence."""

    reason: str
    evidence: str


def occurrence_gap(expected: int | None, seen: Iterable[Any] | int) -> Gap | None:
    """None when exactly `expected` distinct occurrences were seen; else the Gap.

    `seen`: the occurrences (counted once per id) or their number."""
    count = seen if isinstance(seen, int) else len({o.id for o in seen})
    if expected is None:
        return Gap(
            OCCURRENCES_COUNT_UNKNOWN,
            f"{count} occurrence(s) returned, and the API gives no occurrences_count: "
            "not known to be all of them",
        )
    if count < expected:
        return Gap(OCCURRENCES_UNSEEN, f"{count} of {expected} occurrences returned")
    if count > expected:
        return Gap(
            OCCURRENCES_COUNT_MISMATCH,
            f"{count} occurrences returned, but occurrences_count says {expected}",
        )
    return None
