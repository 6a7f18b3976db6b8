"""Query parameters and cursor pagination, as GitGuardian's API answers them.

`Query` reads a request's parameters (400 on a bad value, unknown names ignored); `paginate`
and `scan_page` cut a sorted list into pages with opaque keyset cursors.
"""
from __future__ import annotations

import base64
import binascii
import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.api import ApiError, clone, iso, parse_time

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


class Query:
    """Query parameters of one request, with typed accessors that answer 400 on bad values.

    Unknown names are simply never read: the real API ignores them too.
    """

    def __init__(self, params: Mapping[str, str]):
        self.params = {k: v for k, v in params.items() if v is not None}

    def text(self, name: str) -> str | None:
        value = self.params.get(name)
        return value if value not in (None, "") else None

    def many(self, name: str) -> list[str] | None:
        value = self.text(name)
        return None if value is None else [p.strip() for p in value.split(",") if p.strip()]

    def integers(self, name: str) -> list[int] | None:
        values = self.many(name)
        if values is None:
            return None
        try:
            return [int(v) for v in values]
        except ValueError:
            raise ApiError(400, f"{name}: a valid integer is required.") from None

    def integer(self, name: str) -> int | None:
        values = self.integers(name)
        return None if values is None else values[0]

    def boolean(self, name: str) -> bool | None:
        value = self.text(name)
        if value is None:
            return None
        lowered = value.lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ApiError(400, f"{name}: must be a valid boolean.")

    def time(self, name: str) -> datetime | None:
        value = self.text(name)
        return None if value is None else parse_time(value, name)

    def time_text(self, name: str) -> str | None:
        """The time in the stored text format, which compares in time order."""
        value = self.time(name)
        return None if value is None else iso(value)

    def at_least(self, name: str, length: int) -> str | None:
        value = self.text(name)
        if value is not None and len(value) < length:
            raise ApiError(400, f"{name}: ensure this field has at least {length} characters.")
        return value

    def per_page(self) -> int:
        value = self.text("per_page")
        if value is None:
            return DEFAULT_PER_PAGE
        try:
            number = int(value)
        except ValueError:
            raise ApiError(400, "per_page: a valid integer is required.") from None
        if not 1 <= number <= MAX_PER_PAGE:
            raise ApiError(400, f"per_page: must be between 1 and {MAX_PER_PAGE}.")
        return number


SortKey = Callable[[dict[str, Any]], Any]


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    prev_cursor: str | None
    per_page: int


def _encode_cursor(position: Any, reverse: bool) -> str:
    text = ("r=1&" if reverse else "") + "p=" + json.dumps(position, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[Any, bool]:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
        reverse = text.startswith("r=1&")
        if reverse:
            text = text[4:]
        if not text.startswith("p="):
            raise ValueError(text)
        position = json.loads(text[2:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "Invalid cursor.") from None
    return (tuple(position) if isinstance(position, list) else position), reverse


def paginate(items: list[dict], key: SortKey, descending: bool, query: Query) -> Page:
    """Keyset pagination: a cursor holds the sort key of the page's edge item.

    Keyset rather than offsets so that a caller who changes incidents while it pages through
    a filtered list (assigning TRIGGERED ones, say) never skips any. `items` are sorted in
    ascending `key` order; `descending` serves them reversed.
    """
    per_page = query.per_page()
    keys = [key(item) for item in items]
    cursor = query.text("cursor")
    position, reverse = _decode_cursor(cursor) if cursor else (None, False)
    total = len(items)
    if position is None:
        if descending:
            start, stop = max(0, total - per_page), total
        else:
            start, stop = 0, min(per_page, total)
    else:
        try:
            # forward on ascending, or backward on descending: items after the key
            after = (not descending) != reverse
            if after:
                start = bisect_right(keys, position)
                stop = min(total, start + per_page)
            else:
                stop = bisect_left(keys, position)
                start = max(0, stop - per_page)
        except TypeError:
            raise ApiError(400, "Invalid cursor.") from None
    chunk = items[start:stop]
    chunk_keys = keys[start:stop]
    has_before, has_after = start > 0, stop < total  # in ascending terms
    if descending:
        chunk, chunk_keys = chunk[::-1], chunk_keys[::-1]
        has_next, has_prev = has_before, has_after
    else:
        has_next, has_prev = has_after, has_before
    next_cursor = _encode_cursor(chunk_keys[-1], False) if chunk and has_next else None
    prev_cursor = _encode_cursor(chunk_keys[0], True) if chunk and has_prev else None
    return Page([clone(i) for i in chunk], next_cursor, prev_cursor, per_page)


def scan_page(
    ids: list[int], items: Mapping[int, dict], keep: Callable[[dict], bool], query: Query
) -> Page:
    """Keyset pagination in ascending id order that filters only as far as the page needs.

    The common call (a filtered list, default order, per_page=100) then costs one page of
    work instead of a pass over every incident.
    """
    per_page = query.per_page()
    cursor = query.text("cursor")
    position, reverse = _decode_cursor(cursor) if cursor else (None, False)
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
        raise ApiError(400, "Invalid cursor.")
    found: list[dict] = []
    if not reverse:
        index = 0 if position is None else bisect_right(ids, position)
        for item_id in ids[index:]:
            if keep(items[item_id]):
                found.append(items[item_id])
                if len(found) > per_page:
                    break
        page, has_next = found[:per_page], len(found) > per_page
        has_prev = position is not None and any(
            keep(items[i]) for i in reversed(ids[:index]))
    else:
        index = bisect_left(ids, position)
        for item_id in reversed(ids[:index]):
            if keep(items[item_id]):
                found.append(items[item_id])
                if len(found) > per_page:
                    break
        page, has_prev = found[:per_page][::-1], len(found) > per_page
        has_next = any(keep(items[i]) for i in ids[index:])
    next_cursor = _encode_cursor(page[-1]["id"], False) if page and has_next else None
    prev_cursor = _encode_cursor(page[0]["id"], True) if page and has_prev else None
    return Page([clone(i) for i in page], next_cursor, prev_cursor, per_page)


def order_of(
    query: Query, allowed: Iterable[str], default: str = "id"
) -> tuple[SortKey, bool]:
    """Sort key and direction from `ordering`; unknown orderings fall back to the default."""
    value = query.text("ordering") or default
    descending = value.startswith("-")
    field_name = value.lstrip("-+")
    if field_name not in allowed:
        field_name, descending = default.lstrip("-"), default.startswith("-")
    if field_name == "id":
        return (lambda item: item["id"]), descending

    def key(item: dict[str, Any]) -> tuple:
        value = item.get(field_name)
        # nulls sort after values; the id breaks ties so every key is unique
        if value is None:
            return (True, 0 if field_name == "risk_score" else "", item["id"])
        return (False, value, item["id"])

    return key, descending


def in_order(items: Iterable[dict], key: SortKey) -> list[dict]:
    return sorted(items, key=key)


def has_any_tag(present: list[str], wanted: list[str]) -> bool:
    if "NONE" in wanted and not present:
        return True
    return any(tag in present for tag in wanted)


def is_before(stored: str | None, limit: str) -> bool:
    # Stored times all share iso()'s fixed-width format, so text order is time order:
    # comparing text keeps a 100k-incident filter fast.
    return stored is not None and stored < limit


def is_after(stored: str | None, limit: str) -> bool:
    return stored is not None and stored >= limit
