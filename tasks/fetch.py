"""Fetch tasks: whole listings, page by page, in one task run each (a task run per incident
would cost more than the request). Server-side filters are re-checked on the answers, because
the API silently ignores a filter it does not know.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from prefect.cache_policies import NO_CACHE

from tasks.progress import Progress, paged
from tasks.runtime import task

if TYPE_CHECKING:
    from prefect import Task
    from prefect.client.schemas.objects import State, TaskRun

# Reads are idempotent: a retried fetch only costs requests. The client already retries 429,
# 5xx and connection errors with backoff; one task retry covers a longer blip.

def transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """The one retry condition (Prefect's `retry_condition_fn`) of every Prefect task that
    calls the GitGuardian API: retry
    only what a later try can fix, a 429, 5xx or lost connection that outlasted the client's
    own retries. A 401, 403 or bad answer fails at once."""
    from clients.gitguardian import ConnectionFailed, RateLimited, ServerError

    try:
        state.result()
    except (ConnectionFailed, RateLimited, ServerError):
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth a second try
        return False
    return False


# The options of every task that calls the GitGuardian API (here, in the flows). Inputs hold
# clients (sockets, locks): never hashed for caching, and results are fresh data. The directory
# tasks (tasks/enrich.py) have no task retry: see there.
FETCH: Final[dict[str, Any]] = dict(retries=1, retry_delay_seconds=5,
                                    retry_condition_fn=transient, cache_policy=NO_CACHE)


@task(name="fetch-members", **FETCH)
def fetch_members(client: Any) -> list[Any]:
    return [m for page in paged(client.members(per_page=100).pages(), "members", "members")
            for m in page]


# -- what a run scoped to a few incidents (an event's) may reuse from the runs before it ----------
#
# The member list changes rarely, and an event's runs come seconds apart: a scoped run takes it
# from a Prefect task cache (persisted results, on this machine's Prefect storage) for
# SCOPED_CACHE_SECONDS (GG_SCOPED_CACHE_SECONDS, default 10 min), keyed by the API URL and a
# digest of the key (never the key). A member gone since: its assignment is refused by the API (a
# failed outcome), the next sweep settles it.
#
# The token's description (its id, scopes, workspace) does not change for the key's lifetime: it
# is cached the same way for TOKEN_CACHE_SECONDS (GG_TOKEN_CACHE_SECONDS, default 24 h), and
# never used past the token's own `expire_at` (then read again: an expired key answers 401). A
# key revoked or narrowed meanwhile: the run's first refused request (401/403) ends it or fails
# that write, and says so. `python -m deployments.serve` fills it when it starts. Full sweeps
# always read both afresh.
SCOPED_CACHE_SECONDS = float(os.environ.get("GG_SCOPED_CACHE_SECONDS") or 600)
TOKEN_CACHE_SECONDS = float(os.environ.get("GG_TOKEN_CACHE_SECONDS") or 24 * 3600)


def _cache_key(context: Any, parameters: dict[str, Any], seconds: float) -> str | None:
    client = parameters.get("client")
    key = getattr(getattr(client, "_api_key", None), "value", None)
    if not key or seconds <= 0:
        return None  # not cached
    digest = hashlib.sha256(f"{getattr(client, 'base_url', '')}\n{key}".encode()).hexdigest()
    return f"gg-{context.task.name}-{digest[:32]}"


def _per_key(context: Any, parameters: dict[str, Any]) -> str | None:
    return _cache_key(context, parameters, SCOPED_CACHE_SECONDS)


def _per_token(context: Any, parameters: dict[str, Any]) -> str | None:
    return _cache_key(context, parameters, TOKEN_CACHE_SECONDS)


def _cached(key_fn: Any, seconds: float) -> dict[str, Any]:
    return dict(cache_key_fn=key_fn, persist_result=True,
                cache_expiration=timedelta(seconds=max(seconds, 0.0)))


@task(name="token-info-cached", retries=0, **_cached(_per_token, TOKEN_CACHE_SECONDS))
def _token_info(client: Any) -> Any:
    return client.token_info()


def token_info_cached(client: Any) -> Any:
    """`client.token_info()`, kept for TOKEN_CACHE_SECONDS and never past the token's own
    `expire_at`: a description whose key has expired since is read again (the API then
    answers 401, and the run says the key was refused)."""
    token = _token_info(client)
    expire_at = getattr(token, "expire_at", None)
    if expire_at is not None and expire_at <= datetime.now(UTC):
        token = _token_info.with_options(refresh_cache=True)(client)
    return token


@task(name="fetch-members-cached", retries=1, retry_delay_seconds=5,
      retry_condition_fn=transient, **_cached(_per_key, SCOPED_CACHE_SECONDS))
def fetch_members_cached(client: Any) -> list[Any]:
    """`fetch_members`, shared by the scoped runs of the next few minutes."""
    return [m for page in paged(client.members(per_page=100).pages(), "members", "members")
            for m in page]


def described(what: str, filters: dict[str, Any]) -> str:
    """'incidents (status=ASSIGNED, validity=invalid)': a listing, as progress lines name it."""
    shown = ", ".join(f"{k}={v if not isinstance(v, (list, tuple)) else ','.join(map(str, v))}"
                      for k, v in filters.items() if v not in (None, [], ()))
    return f"{what} ({shown})" if shown else what


@task(name="fetch-incidents", **FETCH)
def fetch_incidents(client: Any, **filters: Any) -> list[Any]:
    """Every incident matching the filters. A `status` filter is re-checked on the answers."""
    statuses = _as_set(filters.get("status"))
    found = []
    pages = client.incidents(per_page=100, **filters).pages()
    for page in paged(pages, described("incidents", filters), "incidents"):
        found.extend(i for i in page if not statuses or i.status in statuses)
    return found


@task(name="fetch-occurrences", **FETCH)
def fetch_occurrences(client: Any, **filters: Any) -> dict[int, list[Any]]:
    """Occurrences in bulk from /v1/occurrences/secrets, grouped by incident id."""
    grouped: dict[int, list[Any]] = defaultdict(list)
    pages = client.occurrences(per_page=100, **filters).pages()
    for page in paged(pages, described("occurrences", filters), "occurrences"):
        for occurrence in page:
            grouped[occurrence.incident_id].append(occurrence)
    return dict(grouped)


@task(name="fetch-occurrences-of", **FETCH)
def fetch_occurrences_of(client: Any, incident_ids: Sequence[int]) -> dict[int, list[Any]]:
    """Occurrences of a few incidents, one filtered listing each (cheaper than a bulk sweep
    when only a handful of incidents need them)."""
    grouped: dict[int, list[Any]] = {}
    progress = Progress("occurrences of incidents", total=len(incident_ids), unit="incidents")
    for done, incident_id in enumerate(incident_ids, 1):
        progress.update(done - 1)
        grouped[incident_id] = [
            o for o in client.occurrences(per_page=100, incident_id=incident_id)
            if o.incident_id == incident_id
        ]
    progress.update(len(incident_ids))
    progress.finish()
    return grouped


# A GET of one incident carries up to this many of its occurrences (the API's maximum).
WITH_OCCURRENCES = 100


@task(name="fetch-incidents-by-id", **FETCH)
def fetch_incidents_by_id(client: Any, incident_ids: Sequence[int]
                          ) -> tuple[list[Any], dict[int, list[Any]]]:
    """The given incidents and their occurrences, for a run scoped to them (an event's ids).

    One GET per incident, which carries up to 100 of its occurrences; an incident with more is
    completed by one filtered occurrence listing. Requests grow with the ids, never with the
    workspace. An id the API does not know (deleted since the event, or of another workspace)
    is left out, and said."""
    from clients.gitguardian import NotFound
    from tasks.runtime import get_run_logger

    incidents: list[Any] = []
    occurrences: dict[int, list[Any]] = {}
    missing: list[int] = []
    for incident_id in sorted({int(i) for i in incident_ids}):
        try:
            incident = client.incident(incident_id, with_occurrences=WITH_OCCURRENCES)
        except NotFound:
            missing.append(incident_id)
            continue
        found = list(incident.occurrences or [])
        if (incident.occurrences_count or 0) > len(found):
            found = [o for o in client.occurrences(per_page=100, incident_id=incident_id)
                     if o.incident_id == incident_id]
        incidents.append(incident.model_copy(update={"occurrences": None}))
        occurrences[incident_id] = found
    if missing:
        get_run_logger().warning("%d incident(s) not found, left out: %s", len(missing),
                                 ", ".join(map(str, missing[:20])))
    return incidents, occurrences


class ScopedRead:
    """The one read of an event's incidents (`fetch_incidents_by_id`), made when first asked
    for and shared by the playbooks of one flow run (flows/new_incidents.py: auto-ignore, then
    triage on the same answers).

    `read_at` is `time.monotonic()` from just before that read: the write path takes the read
    as an incident's safety read only while it is at most 10 s old (`act.apply_plan`'s
    `read_at`), and reads the incident again when older, so a later playbook of the run may
    pass it on as it is."""

    def __init__(self, incident_ids: Sequence[int]):
        self.incident_ids = list(incident_ids)
        self.read_at: float | None = None
        self._answer: tuple[list[Any], dict[int, list[Any]]] | None = None

    def __call__(self, client: Any) -> tuple[list[Any], dict[int, list[Any]]]:
        if self._answer is None:
            self.read_at = time.monotonic()
            self._answer = fetch_incidents_by_id(client, self.incident_ids)
        return self._answer


def _as_set(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {v for v in value.split(",") if v}
    return {str(v) for v in value}
