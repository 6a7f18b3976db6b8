"""The API's reads: lists with their filters and orderings, and single objects."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from sandbox.api import NOT_FOUND, ApiError, clone
from sandbox.query import (
    Page,
    Query,
    has_any_tag,
    in_order,
    is_after,
    is_before,
    order_of,
    paginate,
    scan_page,
)
from sandbox.state import State


class Reads(State):
    """Every GET the API serves but the tokens' (sandbox/auth.py)."""

    def list_activity_logs(self, incident_id: int, query: Query) -> Page:
        with self.lock:
            self._incident(incident_id)
            entries = list(self._history(incident_id))
            keys = query.many("content_key")  # unrecorded filter, harmless when unsent
            if keys is not None:
                entries = [e for e in entries if e["content"]["content_key"] in set(keys)]
            key, descending = order_of(query, ("id", "created_at"))
            return paginate(in_order(entries, key), key, descending, query)

    def list_teams(self, query: Query) -> Page:
        with self.lock:
            teams = list(self.teams)
            is_global = query.boolean("is_global")
            if is_global is not None:
                teams = [t for t in teams if t["is_global"] == is_global]
            search = query.text("search")
            if search is not None:
                teams = [t for t in teams if search.casefold() in t["name"].casefold()]
            key, descending = order_of(query, ("id",))
            return paginate(in_order(teams, key), key, descending, query)

    def permission_of(self, member: dict, incident: dict) -> str | None:
        """What a member may do on an incident: managers and owners see every incident; a
        member or restricted member, those assigned to them or granted to them."""
        if not member.get("active", True):
            return None
        granted = self.access.get(incident["id"], {}).get(member["id"])
        if member.get("access_level") in ("owner", "manager"):
            return "full_access"
        if granted:
            return granted
        if incident.get("assignee_id") == member["id"]:
            return "can_edit"
        return None

    def list_incident_members(self, incident_id: int, query: Query) -> Page:
        with self.lock:
            incident = self._incident(incident_id)
            rows = []
            for member in self.members.values():
                permission = self.permission_of(member, incident)
                if permission is None:
                    continue
                rows.append({"id": member["id"], "member_id": member["id"],
                             "role": member.get("access_level"), "name": member.get("name"),
                             "email": member.get("email"), "incident_id": incident_id,
                             "incident_permission": permission})
            permissions = query.many("incident_permission")
            if permissions is not None:
                rows = [r for r in rows if r["incident_permission"] in set(permissions)]
            levels = query.many("access_level")
            if levels is not None:
                rows = [r for r in rows if r["role"] in set(levels)]
            search = query.text("search")
            if search is not None:
                needle = search.casefold()
                rows = [r for r in rows if needle in (r["email"] or "").casefold()
                        or needle in (r["name"] or "").casefold()]
            key, descending = order_of(query, ("id",))
            return paginate(in_order(rows, key), key, descending, query)

    def list_member_incidents(self, member_id: int, query: Query) -> Page:
        """The incidents a member has access to, filtered as the incident list is."""
        with self.lock:
            member = self.members.get(member_id)
            if member is None:
                raise ApiError(404, NOT_FOUND)
            matches = self._incident_filter(query)

            def keep(incident: dict) -> bool:
                return self.permission_of(member, incident) is not None and matches(incident)

            key, descending = order_of(
                query, ("id", "date", "resolved_at", "ignored_at", "risk_score"))
            if not descending and (query.text("ordering") or "id").lstrip("+") == "id":
                return scan_page(self._incident_ids, self.incidents, keep, query)
            chosen = in_order((i for i in self.incidents.values() if keep(i)), key)
            return paginate(chosen, key, descending, query)

    def _incident_filter(self, query: Query) -> Callable[[dict], bool]:
        tests: list[Callable[[dict], bool]] = []
        for name in ("status", "severity", "validity"):
            values = query.many(name)
            if values is not None:
                allowed = set(values)
                tests.append(lambda i, n=name, a=allowed: i.get(n) in a)
        email = query.text("assignee_email")
        if email is not None:
            wanted = email.strip().casefold()
            tests.append(lambda i: (i.get("assignee_email") or "").casefold() == wanted)
        for name in (
            "assignee_id",
            "ignorer_id",
            "resolver_id",
        ):
            ids = query.integers(name)
            if ids is not None:
                tests.append(lambda i, n=name, a=set(ids): i.get(n) in a)
        for name in ("ignorer_api_token_id", "resolver_api_token_id"):
            values = query.many(name)
            if values is not None:
                tests.append(lambda i, n=name, a=set(values): i.get(n) in a)
        for field_name in ("date", "triggered_at"):
            before = query.time_text(f"{field_name}_before")
            after = query.time_text(f"{field_name}_after")
            if before is not None:
                tests.append(lambda i, f=field_name, b=before: is_before(i.get(f), b))
            if after is not None:
                tests.append(lambda i, f=field_name, a=after: is_after(i.get(f), a))
        tags, excluded = query.many("tags"), query.many("exclude_tags")
        if tags is not None:
            tests.append(lambda i: has_any_tag(i.get("tags") or [], tags))
        if excluded is not None:
            tests.append(lambda i: not has_any_tag(i.get("tags") or [], excluded))
        groups = query.many("detector_group_name")
        if groups is not None:
            tests.append(lambda i, g=set(groups): (i.get("detector") or {}).get(
                "detector_group_name") in g)
        feedback = query.boolean("feedback")
        if feedback is not None:
            tests.append(lambda i: bool(i.get("feedback_list")) == feedback)
        tag_ids = query.many("custom_tags")
        if tag_ids is not None:
            tests.append(lambda i, w=set(tag_ids): any(
                str(t.get("id")) in w for t in i.get("custom_tags") or []))
        tag_key, tag_value = query.text("custom_tag_key"), query.text("custom_tag_value")
        if tag_key is not None:
            tests.append(lambda i: any(t.get("key") == tag_key for t in i.get("custom_tags") or []))
        if tag_value is not None:
            tests.append(lambda i: any(
                t.get("value") == tag_value for t in i.get("custom_tags") or []))
        if query.boolean("only_on_provider_archived_sources"):
            tests.append(self._only_on_archived_sources)
        low, high = query.integer("risk_score_min"), query.integer("risk_score_max")
        if low is not None:
            tests.append(lambda i: (i.get("risk_score") or 0) >= low)
        if high is not None:
            tests.append(lambda i: (i.get("risk_score") or 0) <= high)
        return lambda incident: all(test(incident) for test in tests)

    def _only_on_archived_sources(self, incident: dict) -> bool:
        """Every source the incident was seen on is archived at its provider."""
        sources = self.sources_by_incident.get(incident["id"], ())
        return bool(sources) and all(
            (self.sources.get(s, {}).get("provider_metadata") or {}).get("archived")
            for s in sources)

    def list_incidents(self, query: Query, *, source_id: int | None = None) -> Page:
        with self.lock:
            if source_id is not None and source_id not in self.sources:
                raise ApiError(404, NOT_FOUND)
            key, descending = order_of(
                query, ("id", "date", "resolved_at", "ignored_at", "risk_score")
            )
            matches = self._incident_filter(query)
            if source_id is None:
                keep = matches
            else:
                def keep(incident: dict) -> bool:
                    sources = self.sources_by_incident.get(incident["id"], ())
                    return source_id in sources and matches(incident)
            if not descending and (query.text("ordering") or "id").lstrip("+") == "id":
                return scan_page(self._incident_ids, self.incidents, keep, query)
            chosen = [i for i in self.incidents.values() if keep(i)]
            if query.text("ordering"):
                chosen = in_order(chosen, key)  # the dict is kept in id order already
            return paginate(chosen, key, descending, query)

    def get_incident(self, incident_id: int, query: Query) -> dict:
        count = query.integer("with_occurrences")
        count = 20 if count is None else count
        if not 0 <= count <= 100:
            raise ApiError(400, "with_occurrences: must be between 0 and 100.")
        with self.lock:
            incident = clone(self._incident(incident_id))
            if count:
                incident["occurrences"] = clone(
                    self.occurrences_by_incident.get(incident_id, [])[:count]
                )
            return incident

    def list_notes(self, incident_id: int, query: Query) -> Page:
        with self.lock:
            self._incident(incident_id)
            notes = list(self.notes.get(incident_id, []))
            member_ids = query.integers("member_id")
            if member_ids is not None:
                notes = [n for n in notes if n.get("member_id") in set(member_ids)]
            search = query.text("search")
            if search is not None:
                notes = [n for n in notes if search.casefold() in n["comment"].casefold()]
            key, descending = order_of(query, ("id", "created_at", "updated_at"))
            return paginate(in_order(notes, key), key, descending, query)

    def list_occurrences(self, query: Query) -> Page:
        tests: list[Callable[[dict], bool]] = []
        incident_ids = query.integers("incident_id")
        source_ids = query.integers("source_id")
        if source_ids is not None:
            tests.append(lambda o: (o.get("source") or {}).get("id") in set(source_ids))
        source_names = query.many("source_name")
        if source_names is not None:
            tests.append(lambda o: (o.get("source") or {}).get("full_name") in set(source_names))
        source_types = query.many("source_type")
        if source_types is not None:
            tests.append(lambda o: (o.get("source") or {}).get("type") in set(source_types))
        presence = query.many("presence")
        if presence is not None:
            tests.append(lambda o: o.get("presence") in set(presence))
        author_name = query.text("author_name")
        if author_name is not None:
            name_part = author_name.casefold()
            tests.append(lambda o: name_part in (o.get("author_name") or "").casefold())
        author_info = query.at_least("author_info", 3)
        if author_info is not None:
            email_part = author_info.casefold()
            tests.append(lambda o: email_part in (o.get("author_info") or "").casefold())
        sha = query.at_least("sha", 3)
        if sha is not None:
            tests.append(lambda o: (o.get("sha") or "").startswith(sha))
        filepath = query.at_least("filepath", 3)
        if filepath is not None:
            tests.append(lambda o: filepath in (o.get("filepath") or ""))
        tags, excluded = query.many("tags"), query.many("exclude_tags")
        if tags is not None:
            tests.append(lambda o: has_any_tag(o.get("tags") or [], tags))
        if excluded is not None:
            tests.append(lambda o: not has_any_tag(o.get("tags") or [], excluded))
        before, after = query.time_text("date_before"), query.time_text("date_after")
        if before is not None:
            tests.append(lambda o: is_before(o.get("date"), before))
        if after is not None:
            tests.append(lambda o: is_after(o.get("date"), after))
        incident_tests: list[Callable[[dict], bool]] = []
        for name in ("severity", "status", "validity"):
            values = query.many(name)
            if values is not None:
                incident_tests.append(lambda i, n=name, a=set(values): i.get(n) in a)
        assignees = query.integers("incident_assignee_id")
        if assignees is not None:
            incident_tests.append(lambda i, a=set(assignees): i.get("assignee_id") in a)
        key, descending = order_of(query, ("id", "date"))
        with self.lock:
            if incident_ids is not None:
                pool: Iterable[dict] = (
                    o for i in sorted(set(incident_ids))
                    for o in self.occurrences_by_incident.get(i, [])
                )
            else:
                pool = self.occurrences.values()

            def keep(occurrence: dict) -> bool:
                if not all(test(occurrence) for test in tests):
                    return False
                if not incident_tests:
                    return True
                incident = self.incidents.get(occurrence["incident_id"]) or {}
                return all(test(incident) for test in incident_tests)

            if incident_ids is None and not query.text("ordering"):
                return scan_page(self._occurrence_ids, self.occurrences, keep, query)
            chosen = in_order((o for o in pool if keep(o)), key)
            return paginate(chosen, key, descending, query)

    def list_members(self, query: Query) -> Page:
        with self.lock:
            members = list(self.members.values())
            levels = query.many("access_level")
            if levels is not None:
                members = [m for m in members if m.get("access_level") in set(levels)]
            active = query.boolean("active")
            if active is not None:
                members = [m for m in members if bool(m.get("active")) == active]
            search = query.text("search")
            if search is not None:
                needle = search.casefold()
                members = [
                    m for m in members
                    if needle in (m.get("email") or "").casefold()
                    or needle in (m.get("name") or "").casefold()
                ]
            key, descending = order_of(
                query, ("id", "created_at", "last_login", "email", "name", "access_level")
            )
            return paginate(in_order(members, key), key, descending, query)

    def get_member(self, member_id: int) -> dict:
        with self.lock:
            member = self.members.get(member_id)
            if member is None:
                raise ApiError(404, NOT_FOUND)
            return clone(member)

    def list_sources(self, query: Query) -> Page:
        with self.lock:
            sources = list(self.sources.values())
            for name in ("type", "visibility", "health", "source_criticality", "external_id"):
                values = query.many(name)
                if values is not None:
                    sources = [s for s in sources if s.get(name) in set(values)]
            monitored = query.boolean("monitored")
            if monitored is not None:
                sources = [s for s in sources if bool(s.get("monitored")) == monitored]
            scan_status = query.many("last_scan_status")
            if scan_status is not None:
                sources = [s for s in sources
                           if (s.get("last_scan") or {}).get("status") in set(scan_status)]
            search = query.text("search")
            if search is not None:
                sources = [s for s in sources
                           if search.casefold() in (s.get("full_name") or "").casefold()]
            ordering = (query.text("ordering") or "").lstrip("-")
            if ordering == "last_scan_date":
                descending = (query.text("ordering") or "").startswith("-")

                def key(s: dict) -> tuple:
                    return ((s.get("last_scan") or {}).get("date") or "", s["id"])
            else:
                key, descending = order_of(query, ("id",))
            return paginate(in_order(sources, key), key, descending, query)

    def get_source(self, source_id: int) -> dict:
        with self.lock:
            source = self.sources.get(source_id)
            if source is None:
                raise ApiError(404, NOT_FOUND)
            return clone(source)

    def list_audit_logs(self, query: Query) -> Page:
        tests: list[Callable[[dict], bool]] = []
        before, after = query.time_text("date_before"), query.time_text("date_after")
        if before is not None:
            tests.append(lambda a: is_before(a.get("date"), before))
        if after is not None:
            tests.append(lambda a: is_after(a.get("date"), after))
        for name in ("event_name", "member_email", "member_name", "api_token_id", "ip_address"):
            values = query.many(name)
            if values is not None:
                tests.append(lambda a, n=name, v=set(values): a.get(n) in v)
        member_ids = query.integers("member_id")
        if member_ids is not None:
            tests.append(lambda a: a.get("member_id") in set(member_ids))
        # newest first, as the real endpoint answers
        key, descending = order_of(query, ("id", "date"), default="-id")
        with self.lock:
            chosen = [a for a in self.audit_logs if all(t(a) for t in tests)]
            if query.text("ordering"):
                chosen = in_order(chosen, key)
            return paginate(chosen, key, descending, query)
