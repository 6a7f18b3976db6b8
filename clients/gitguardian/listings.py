"""The client's listings: every list endpoint, one method each, all returning `Paginated[T]`
(`paginated.py`). Mixed into `GitGuardianClient`, whose request path they use."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from clients.gitguardian.paginated import Paginated
from clients.gitguardian.query import (
    _ACTIVITY_FILTERS,
    _AUDIT_LOG_FILTERS,
    _INCIDENT_FILTERS,
    _INCIDENT_MEMBER_FILTERS,
    _MEMBER_FILTERS,
    _NOTE_FILTERS,
    _OCCURRENCE_FILTERS,
    _SOURCE_FILTERS,
    _TEAM_FILTERS,
    _TOKEN_FILTERS,
    MAX_PER_PAGE,
    _object_id,
    build_query,
)
from clients.models import (
    ActivityLog,
    AuditLog,
    Incident,
    IncidentMember,
    Member,
    Note,
    Occurrence,
    Source,
    Team,
    Token,
)

M = TypeVar("M", bound=BaseModel)


class Listings:
    """Each listing returns a Paginated (iterate for items, `.pages()` for pages), its filters
    validated here, at the call; `max_pages` bounds the pages one iteration reads."""

    def _listing(self, model: type[M], endpoint: str, path: str, allowed: Mapping[str, Any],
                 filters: dict[str, Any], per_page: int, max_pages: int | None) -> Paginated[M]:
        query = build_query(endpoint, allowed, filters, per_page)
        return Paginated(self, model, path, query, max_pages=max_pages)

    def incidents(self, *, per_page: int = MAX_PER_PAGE, max_pages: int | None = None,
                  **filters: Any) -> Paginated[Incident]:
        return self._listing(Incident, "incidents", "/v1/incidents/secrets", _INCIDENT_FILTERS,
                             filters, per_page, max_pages)

    def source_incidents(self, source_id: int, *, per_page: int = MAX_PER_PAGE,
                         max_pages: int | None = None, **filters: Any) -> Paginated[Incident]:
        path = f"/v1/sources/{_object_id('source_id', source_id)}/incidents/secrets"
        return self._listing(Incident, "source incidents", path, _INCIDENT_FILTERS, filters,
                             per_page, max_pages)

    def occurrences(self, *, per_page: int = MAX_PER_PAGE, max_pages: int | None = None,
                    **filters: Any) -> Paginated[Occurrence]:
        return self._listing(Occurrence, "occurrences", "/v1/occurrences/secrets",
                             _OCCURRENCE_FILTERS, filters, per_page, max_pages)

    def members(self, *, per_page: int = MAX_PER_PAGE, max_pages: int | None = None,
                **filters: Any) -> Paginated[Member]:
        return self._listing(Member, "members", "/v1/members", _MEMBER_FILTERS, filters,
                             per_page, max_pages)

    def audit_logs(self, *, per_page: int = MAX_PER_PAGE, max_pages: int | None = None,
                   **filters: Any) -> Paginated[AuditLog]:
        return self._listing(AuditLog, "audit logs", "/v1/audit_logs", _AUDIT_LOG_FILTERS,
                             filters, per_page, max_pages)

    def sources(self, *, per_page: int = MAX_PER_PAGE, max_pages: int | None = None,
                **filters: Any) -> Paginated[Source]:
        return self._listing(Source, "sources", "/v1/sources", _SOURCE_FILTERS, filters,
                             per_page, max_pages)

    def notes(self, incident_id: int, *, per_page: int = MAX_PER_PAGE,
              max_pages: int | None = None, **filters: Any) -> Paginated[Note]:
        path = f"/v1/incidents/secrets/{_object_id('incident_id', incident_id)}/notes"
        return self._listing(Note, "notes", path, _NOTE_FILTERS, filters, per_page, max_pages)

    def member_incidents(self, member_id: int, *, per_page: int = MAX_PER_PAGE,
                         max_pages: int | None = None, **filters: Any) -> Paginated[Incident]:
        """The incidents a member has access to (every incident for owners and managers),
        with the incident list's filters."""
        path = f"/v1/members/{_object_id('member_id', member_id)}/secret-incidents"
        return self._listing(Incident, "member incidents", path, _INCIDENT_FILTERS, filters,
                             per_page, max_pages)

    def activity_logs(self, incident_id: int, *, per_page: int = MAX_PER_PAGE,
                      max_pages: int | None = None, **filters: Any) -> Paginated[ActivityLog]:
        path = f"/v1/incidents/secrets/{_object_id('incident_id', incident_id)}/activity-logs"
        return self._listing(ActivityLog, "activity logs", path, _ACTIVITY_FILTERS, filters,
                             per_page, max_pages)

    def incident_members(self, incident_id: int, *, per_page: int = MAX_PER_PAGE,
                         max_pages: int | None = None,
                         **filters: Any) -> Paginated[IncidentMember]:
        path = f"/v1/incidents/secrets/{_object_id('incident_id', incident_id)}/members"
        return self._listing(IncidentMember, "incident members", path,
                             _INCIDENT_MEMBER_FILTERS, filters, per_page, max_pages)

    def api_tokens(self, *, per_page: int = MAX_PER_PAGE, max_pages: int | None = None,
                   **filters: Any) -> Paginated[Token]:
        return self._listing(Token, "api tokens", "/v1/api_tokens", _TOKEN_FILTERS, filters,
                             per_page, max_pages)

    def teams(self, *, per_page: int = MAX_PER_PAGE, max_pages: int | None = None,
              **filters: Any) -> Paginated[Team]:
        return self._listing(Team, "teams", "/v1/teams", _TEAM_FILTERS, filters, per_page,
                             max_pages)
