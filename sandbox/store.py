"""The sandbox's in-memory GitGuardian workspace: queries, pagination, writes and events.

Plain Python, no HTTP: the server (sandbox/server.py) turns requests into calls here and
`ApiError`s into `{"detail": ...}` answers. Every API object is kept as the dict the API
returns, so an answer is a copy of what is stored. One lock guards every mutation; reads take
it too so a page is never built from a half-applied write.

`Store` is one object made of one part per concern, each in its own module:
- sandbox/api.py: the API's values and messages, `ApiError`, actors (`Human`), audit-log event
  names (`audit_write`), times;
- sandbox/query.py: query parameters (`Query`) and keyset cursor pagination (`Page`);
- sandbox/state.py: the indexed workspace, ids, clock, audit and activity logs (`State`);
- sandbox/auth.py: API keys, scopes and the tokens endpoints;
- sandbox/reads.py: every list and single read, with its filters and orderings;
- sandbox/writes.py: the incident state machine, shares, access, PATCH and notes;
- sandbox/events.py: the platform's own changes (new incidents and occurrences, validity,
  departures) and snapshots.
"""
from __future__ import annotations

from sandbox.api import (
    EVENT_NAMES,
    Actor,
    ApiError,
    Human,
    audit_write,
    iso,
    parse_time,
)
from sandbox.auth import Tokens, token_has_scope
from sandbox.events import Events
from sandbox.query import Page, Query, paginate, scan_page
from sandbox.reads import Reads
from sandbox.state import State, generated_past
from sandbox.writes import Writes

__all__ = [
    "EVENT_NAMES", "Actor", "ApiError", "Human", "Page", "Query", "State", "Store", "audit_write",
    "generated_past", "iso", "paginate", "parse_time", "scan_page", "token_has_scope",
]


class Store(Tokens, Reads, Writes, Events):
    """A workspace's state behind the API. Thread-safe; times come from `clock`."""
