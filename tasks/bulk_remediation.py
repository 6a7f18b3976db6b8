"""The bulk remediation's Prefect tasks: the selection's listings (API filters, one listing per
assignee e-mail), its occurrences, and the assignees' managers. The flow is
flows/bulk_remediation.py; the pure selection and decision are tasks/decide/bulk_remediation.py.
"""
from __future__ import annotations

from typing import Any

from prefect.cache_policies import NO_CACHE

from clients.directory import Status
from tasks import enrich, fetch
from tasks.decide.bulk_remediation import BulkRequest, BulkSelection
from tasks.decide.evidence import MANAGER_LOOKUP_ERROR, Evidence, from_directory
from tasks.progress import paged
from tasks.runtime import task

# NO_CACHE: the inputs hold a live client, which can be neither hashed nor cached.


@task(name="select-incidents", **fetch.FETCH)
def fetch_selection(client: Any, request: BulkRequest, members: list[Any] | None = None,
                    ) -> list[Any]:
    """Every incident the API filters select: one listing per assignee e-mail (a `member` or
    `restricted` member's on their own endpoint when `members` are known), else one."""
    seen: dict[int, Any] = {}
    for member_id, query in request.selection.listings(members):
        if member_id is None:
            pages = client.incidents(per_page=100, **query).pages()
        else:
            pages = client.member_incidents(member_id, per_page=100, **query).pages()
        for page in paged(pages, fetch.described("incidents", query), "incidents"):
            for incident in page:
                seen.setdefault(incident.id, incident)
    return list(seen.values())


def date_span(client: Any, selection: BulkSelection) -> tuple[Any, Any]:
    """The `date` of the oldest and of the newest incident the selection matches (None, None
    when it matches none): two requests of one incident each."""
    (query,) = selection.api_queries()
    ends = []
    for ordering in ("date", "-date"):
        listing = client.incidents(per_page=1, max_pages=1, ordering=ordering, **query)
        first = next(listing.pages(), [])
        ends.append(first[0].date if first else None)
    return ends[0], ends[1]


def selection_occurrences(client: Any, incidents: list[Any]) -> dict[int, list[Any]]:
    # A few incidents: one filtered listing each; many: one bulk sweep costs fewer requests.
    if len(incidents) <= 10:
        return fetch.fetch_occurrences_of(client, [i.id for i in incidents])
    wanted = {i.id for i in incidents}
    statuses = {i.status for i in incidents}
    grouped = fetch.fetch_occurrences(client, status=sorted(statuses))
    return {k: v for k, v in grouped.items() if k in wanted}


# No task retry, as every directory task (tasks/enrich.py): the adapter reconnects per call, and a
# failed lookup is an unknown manager, said in the decision.
@task(name="manager-of", cache_policy=NO_CACHE)
def managers_of(directory: Any, emails: list[str]) -> dict[str, Evidence[str]]:
    """Assignee e-mail -> tri-state evidence of their manager: yes (an active one's e-mail), no
    (not in the directory, no manager named, the manager left), unknown (a lookup failed)."""
    found: dict[str, Evidence[str]] = {}
    for email, lookup in enrich.lookup_people.fn(directory, emails).items():
        if lookup.status is Status.ERROR:
            found[email] = from_directory(lookup, reason=MANAGER_LOOKUP_ERROR,
                                          subject=email).retyped()
            continue
        if lookup.person is None:  # not in the directory: nobody to ask about
            found[email] = Evidence.no(f"the directory does not know {email}")
            continue
        chain = directory.manager_chain(lookup.person, depth=1)
        if not chain:
            found[email] = Evidence.no(f"the directory names no manager for {email}")
            continue
        manager = from_directory(chain[0], reason=MANAGER_LOOKUP_ERROR,
                                 subject=f"the manager of {email}")
        found[email] = (Evidence.yes(manager.value.email) if manager.is_yes
                        else manager.retyped())
    return found
