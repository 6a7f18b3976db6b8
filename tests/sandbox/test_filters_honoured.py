"""Every filter the client accepts changes the sandbox's answer.

GitGuardian ignores unknown query parameters, so a filter the client sends and the sandbox
ignored would let a test pass on everything. For each list, the test walks the client's own
filter table: each filter gets a value picked from the workspace (built to hold matches and
non-matches for every one of them), and the filtered answer must be non-empty, different from
the unfiltered one and made only of matching items. A filter added to a table without a
value here fails the walk.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from statistics import median_low
from typing import Any

import pytest

import clients.gitguardian as gg
import sandbox
from clients.gitguardian import GitGuardianClient
from sandbox.workspace import Token


@pytest.fixture(scope="module")
def box() -> Iterator[sandbox.Sandbox]:
    with sandbox.running(seed=7, incidents=300) as running:
        client = GitGuardianClient(running.url, running.token, requests_per_minute=None)
        store = running.store
        open_ids = [i["id"] for i in store.incidents.values() if i["status"] == "TRIGGERED"]
        # closures by our token, custom tags, an archived source: matches for every filter
        client.resolve(open_ids[0], secret_revoked=True)
        client.ignore(open_ids[1], reason="false_positive")
        client.update_incident(open_ids[2], custom_tags=[{"key": "env", "value": "prod"}])
        client.update_incident(open_ids[3], custom_tags=[{"key": "env", "value": "dev"}])
        client.add_note(open_ids[2], "checked")
        # tokens unlike the sandbox's active personal ones: a revoked one, a service account
        other = max(m for m in store.members)
        store.add_token(Token(id="00000000-0000-4000-8000-00000000000a", name="old key",
                              scopes=["incidents:read"], member_id=other, status="revoked"))
        store.add_token(Token(id="00000000-0000-4000-8000-00000000000b", name="a bot",
                              scopes=["incidents:read"], member_id=other,
                              type="service_account"))
        running.human.assign(open_ids[4], store.members[next(iter(store.members))]["email"])
        archived = next(iter(store.sources.values()))
        archived.setdefault("provider_metadata", {})["archived"] = True
        # one source unlike the others on every source filter
        archived.update(health="safe", source_criticality="critical", monitored=False,
                        visibility="public", external_id="sandbox-odd-one")
        archived["last_scan"] = {**(archived.get("last_scan") or {}), "status": "failed"}
        yield running


def ids(items: Any) -> list[Any]:
    return [item.id for item in items]


def _median_time(values: list[datetime]) -> datetime:
    return median_low(sorted(values))


def incident_values(box, client: GitGuardianClient) -> dict[str, tuple[Any, Callable]]:
    """filter -> (value, predicate on the returned model)."""
    every = list(client.incidents())
    token = client.token_info().id
    assigned = next(i for i in every if i.assignee_id)
    ignored = next(i for i in every if i.ignorer_id)
    resolved = next(i for i in every if i.resolver_id)
    tagged = next(i for i in every if i.custom_tags)
    tag = tagged.custom_tags[0]
    date = _median_time([i.date for i in every])
    triggered = _median_time([i.triggered_at for i in every if i.triggered_at])
    risk = median_low(sorted(i.risk_score or 0 for i in every))
    group = every[0].detector.detector_group_name
    store = box.store
    return {
        "status": ("RESOLVED", lambda i: i.status == "RESOLVED"),
        "severity": ("high", lambda i: i.severity == "high"),
        "validity": ("valid", lambda i: i.validity == "valid"),
        "assignee_email": (assigned.assignee_email,
                           lambda i: i.assignee_email.lower() == assigned.assignee_email.lower()),
        "assignee_id": (assigned.assignee_id, lambda i: i.assignee_id == assigned.assignee_id),
        "date_before": (date, lambda i: i.date < date),
        "date_after": (date, lambda i: i.date >= date),
        "triggered_at_before": (triggered, lambda i: i.triggered_at < triggered),
        "triggered_at_after": (triggered, lambda i: i.triggered_at >= triggered),
        "tags": ("TEST_FILE", lambda i: "TEST_FILE" in i.tags),
        "exclude_tags": ("TEST_FILE", lambda i: "TEST_FILE" not in i.tags),
        "detector_group_name": (group, lambda i: i.detector.detector_group_name == group),
        "ignorer_id": (ignored.ignorer_id, lambda i: i.ignorer_id == ignored.ignorer_id),
        "ignorer_api_token_id": (token, lambda i: i.ignorer_api_token_id == token),
        "resolver_id": (resolved.resolver_id, lambda i: i.resolver_id == resolved.resolver_id),
        "resolver_api_token_id": (token, lambda i: i.resolver_api_token_id == token),
        "feedback": (True, lambda i: bool(i.feedback_list)),
        "risk_score_min": (risk, lambda i: (i.risk_score or 0) >= risk),
        "risk_score_max": (risk, lambda i: (i.risk_score or 0) <= risk),
        "custom_tags": (str(tag.id), lambda i: str(tag.id) in {str(t.id) for t in i.custom_tags}),
        "custom_tag_key": (tag.key, lambda i: tag.key in {t.key for t in i.custom_tags}),
        "custom_tag_value": (tag.value, lambda i: tag.value in {t.value for t in i.custom_tags}),
        "only_on_provider_archived_sources": (True, lambda i: store._only_on_archived_sources(
            {"id": i.id})),
    }


def test_every_incident_filter_changes_the_answer(box):
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    values = incident_values(box, client)
    assert set(values) == set(gg._INCIDENT_FILTERS) - {"ordering"}, "a filter has no value"
    every = ids(client.incidents())
    for name, (value, matches) in values.items():
        got = list(client.incidents(**{name: value}))
        assert got and ids(got) != every, f"{name}={value!r} did not change the answer"
        assert all(matches(i) for i in got), f"{name}={value!r} let a non-match through"
    # the same filters on a member's incidents (the token's member sees every incident)
    member = client.token_info().member_id
    for name, (value, matches) in values.items():
        got = list(client.member_incidents(member, **{name: value}))
        assert got and all(matches(i) for i in got), f"member incidents: {name}={value!r}"
    ordered = [i.risk_score for i in client.incidents(ordering="-risk_score")]
    assert ordered == sorted(ordered, reverse=True) and ordered != [
        i.risk_score for i in client.incidents()]


def test_every_occurrence_filter_changes_the_answer(box):
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    every = list(client.occurrences())
    first = next(o for o in every if o.sha and o.filepath)
    incidents = {i.id: i for i in client.incidents()}
    assignee = next(i.assignee_id for i in incidents.values() if i.assignee_id)
    date = _median_time([o.date for o in every])
    gitlab = next(o for o in every if o.source.type == "gitlab")
    path_part = next(o.filepath for o in every if o.filepath and len(o.filepath) >= 3)[:3]
    values: dict[str, tuple[Any, Callable]] = {
        "incident_id": (first.incident_id, lambda o: o.incident_id == first.incident_id),
        "source_id": (first.source.id, lambda o: o.source.id == first.source.id),
        "source_name": (first.source.full_name,
                        lambda o: o.source.full_name == first.source.full_name),
        "source_type": ("gitlab", lambda o: o.source.type == "gitlab"),
        "presence": ("removed", lambda o: o.presence == "removed"),
        "author_name": (gitlab.author_name,
                        lambda o: gitlab.author_name.lower() in o.author_name.lower()),
        "author_info": (gitlab.author_info,
                        lambda o: gitlab.author_info.lower() in o.author_info.lower()),
        "sha": (first.sha[:8], lambda o: (o.sha or "").startswith(first.sha[:8])),
        "filepath": (path_part, lambda o: path_part in (o.filepath or "")),
        "severity": ("high", lambda o: incidents[o.incident_id].severity == "high"),
        "status": ("RESOLVED", lambda o: incidents[o.incident_id].status == "RESOLVED"),
        "validity": ("valid", lambda o: incidents[o.incident_id].validity == "valid"),
        "tags": ("TEST_FILE", lambda o: "TEST_FILE" in o.tags),
        "exclude_tags": ("TEST_FILE", lambda o: "TEST_FILE" not in o.tags),
        "date_before": (date, lambda o: o.date < date),
        "date_after": (date, lambda o: o.date >= date),
        "incident_assignee_id": (
            assignee, lambda o: incidents[o.incident_id].assignee_id == assignee),
    }
    assert set(values) == set(gg._OCCURRENCE_FILTERS) - {"ordering"}, "a filter has no value"
    for name, (value, matches) in values.items():
        got = list(client.occurrences(**{name: value}))
        assert got and ids(got) != ids(every), f"{name}={value!r} did not change the answer"
        assert all(matches(o) for o in got), f"{name}={value!r} let a non-match through"
    newest_first = [o.date for o in client.occurrences(ordering="-date")]
    assert newest_first == sorted(newest_first, reverse=True)


def _walk(lister: Callable[..., Iterator[Any]], table: dict[str, Any],
          values: dict[str, tuple[Any, Callable]], skip: set[str] = frozenset()) -> None:
    assert set(values) == set(table) - {"ordering"} - set(skip), "a filter has no value"
    every = ids(lister())
    for name, (value, matches) in values.items():
        got = list(lister(**{name: value}))
        assert got and ids(got) != every, f"{name}={value!r} did not change the answer"
        assert all(matches(x) for x in got), f"{name}={value!r} let a non-match through"


def test_every_other_list_filter_changes_the_answer(box):
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    members = list(client.members())
    someone = members[1]
    _walk(client.members, gg._MEMBER_FILTERS, {
        "access_level": ("manager", lambda m: m.access_level == "manager"),
        "active": (False, lambda m: m.active is False),
        "search": (someone.email, lambda m: someone.email.lower() in m.email.lower()),
    })
    logs = list(client.audit_logs())
    first, last = logs[-1], logs[0]
    token = client.token_info()
    human = next(log for log in logs if log.api_token_id is None)
    middle = sorted(log.date for log in logs)[len(logs) // 2]
    audit_values = {
        "date_before": (middle, lambda a: a.date < middle),
        "date_after": (middle, lambda a: a.date >= middle),
        "event_name": (first.event_name, lambda a: a.event_name == first.event_name),
        "member_id": (human.member_id, lambda a: a.member_id == human.member_id),
        "member_email": (human.member_email, lambda a: a.member_email == human.member_email),
        "member_name": (human.member_name, lambda a: a.member_name == human.member_name),
        "api_token_id": (token.id, lambda a: a.api_token_id == token.id),
        "ip_address": (last.ip_address, lambda a: a.ip_address == last.ip_address),
    }
    _walk(client.audit_logs, gg._AUDIT_LOG_FILTERS, audit_values)
    repo = next(s for s in client.sources() if s.external_id == "sandbox-odd-one")
    _walk(client.sources, gg._SOURCE_FILTERS, {
        "search": (repo.full_name, lambda s: repo.full_name.lower() in s.full_name.lower()),
        "type": ("gitlab", lambda s: s.type == "gitlab"),
        "health": (repo.health, lambda s: s.health == repo.health),
        "visibility": (repo.visibility, lambda s: s.visibility == repo.visibility),
        "source_criticality": (repo.source_criticality,
                               lambda s: s.source_criticality == repo.source_criticality),
        "monitored": (False, lambda s: s.monitored is False),
        "external_id": (repo.external_id, lambda s: s.external_id == repo.external_id),
        "last_scan_status": (repo.last_scan.status,
                             lambda s: s.last_scan.status == repo.last_scan.status),
    })


def test_the_filters_of_the_new_lists_change_the_answer(box):
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    tagged = next(i for i in client.incidents(custom_tag_key="env"))
    box.human.add_note(tagged.id, "a person's note")
    mine = client.token_info().member_id
    notes = list(client.notes(tagged.id))
    _walk(lambda **f: client.notes(tagged.id, **f), gg._NOTE_FILTERS, {
        "member_id": (mine, lambda n: n.member_id == mine),
        "search": ("person", lambda n: "person" in n.comment),
    })
    assert len(notes) == 2
    incident = next(i for i in client.incidents(status="ASSIGNED"))
    rows = list(client.incident_members(incident.id))
    needle = rows[-1].email.split("@")[0]
    _walk(lambda **f: client.incident_members(incident.id, **f), gg._INCIDENT_MEMBER_FILTERS, {
        "access_level": ("owner", lambda m: m.role == "owner"),
        "incident_permission": ("full_access", lambda m: m.incident_permission == "full_access"),
        "search": (needle, lambda m: needle.lower() in f"{m.email} {m.name}".lower()),
    })
    bot = next(t for t in client.api_tokens() if t.type == "service_account")
    _walk(client.api_tokens, gg._TOKEN_FILTERS, {
        "status": ("revoked", lambda t: t.status == "revoked"),
        "type": ("service_account", lambda t: t.type == "service_account"),
        "member_id": (bot.member_id, lambda t: t.member_id == bot.member_id),
    })
    _walk(client.teams, gg._TEAM_FILTERS, {
        "is_global": (True, lambda t: t.is_global is True),
        "search": ("Developers", lambda t: "developers" in t.name.lower()),
    })


def test_a_revoked_key_is_refused(box):
    revoked = next(secret for secret, t in box.store.tokens.items() if t.status == "revoked")
    with pytest.raises(gg.AuthenticationError) as refused:
        GitGuardianClient(box.url, revoked, requests_per_minute=None).token_info()
    assert refused.value.status == 401


def _ordered(lister: Callable[..., Iterator[Any]], choices: list[str],
             value: Callable[[Any, str], Any]) -> None:
    """Each `x` / `-x` ordering sorts the answer by x both ways (nulls aside), and the two
    answers differ: a sandbox that ignored `ordering` would answer both in id order."""
    for field_name in choices:
        answers = {}
        for ordering in (field_name, f"-{field_name}"):
            items = list(lister(ordering=ordering))
            present = [value(x, field_name) for x in items if value(x, field_name) is not None]
            assert present == sorted(present, reverse=ordering.startswith("-")), ordering
            answers[ordering] = ids(items)
        assert answers[field_name] != answers[f"-{field_name}"], f"{field_name} ignored"


def _ordering_choices(table: dict[str, Any]) -> list[str]:
    """The fields the client's `ordering` validator accepts (each with and without `-`)."""
    validate = table["ordering"]
    candidates = {"date", "resolved_at", "ignored_at", "risk_score", "created_at",
                  "updated_at", "last_login", "last_scan_date"}
    accepted = []
    for name in sorted(candidates):
        try:
            validate("ordering", name)
            validate("ordering", f"-{name}")
        except ValueError:
            continue
        accepted.append(name)
    return accepted


def test_every_ordering_the_client_accepts_orders_the_answer(box):
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    tables = {name: table for name, table in vars(gg).items()
              if name.endswith("_FILTERS") and isinstance(table, dict) and "ordering" in table}
    checked: set[str] = set()

    def walk(name: str, lister: Callable[..., Iterator[Any]],
             value: Callable[[Any, str], Any] = lambda x, f: getattr(x, f)) -> None:
        choices = _ordering_choices(tables[name])
        assert choices, name
        _ordered(lister, choices, value)
        checked.add(name)

    walk("_INCIDENT_FILTERS", client.incidents)
    member = client.token_info().member_id
    walk("_INCIDENT_FILTERS", lambda **f: client.member_incidents(member, **f))
    walk("_OCCURRENCE_FILTERS", client.occurrences)
    walk("_MEMBER_FILTERS", client.members)
    walk("_SOURCE_FILTERS", client.sources, lambda s, f: s.last_scan.date if s.last_scan else None)
    # notes whose update order differs from their creation order
    incident = next(i.id for i in client.incidents(status="TRIGGERED", exclude_tags="TEST_FILE"))
    first, _, third = (client.add_note(incident, f"note {n}") for n in range(3))
    client.update_note(incident, third.id, "third, edited first")
    client.update_note(incident, first.id, "first, edited last")
    walk("_NOTE_FILTERS", lambda **f: client.notes(incident, **f))
    walk("_ACTIVITY_FILTERS", lambda **f: client.activity_logs(incident, **f))
    assert checked == set(tables), f"an ordering is not walked: {set(tables) - checked}"


def test_source_incidents_honour_every_incident_filter(box):
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    values = incident_values(box, client)
    source = max(box.store.sources, key=lambda s: sum(
        1 for ids_ in box.store.sources_by_incident.values() if s in ids_))
    on_source = set(ids(client.source_incidents(source)))
    changed = 0
    for name, (value, _) in values.items():
        want = [i for i in ids(client.incidents(**{name: value})) if i in on_source]
        got = ids(client.source_incidents(source, **{name: value}))
        assert got == want, f"source incidents: {name}={value!r}"
        changed += set(got) != on_source
    assert changed >= len(values) - 2  # nearly every filter excludes some of the source's


# Every public method of the client, called once on a sandbox of its own: a method whose
# endpoint the sandbox does not serve answers 404 or 405 and fails here. A method added to the
# client without a line here fails the completeness check.
NOT_ENDPOINTS = {"from_env"}


def test_every_client_method_is_served(fresh_sandbox):
    import inspect

    box = fresh_sandbox
    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    store = box.store
    triggered = sorted(i["id"] for i in store.incidents.values() if i["status"] == "TRIGGERED")
    incident, other = triggered[0], triggered[1]
    member = next(m for m in store.members.values()
                  if m.get("active", True) and m.get("access_level") == "member")
    source = next(iter(store.sources))
    token = next(iter(store.tokens.values())).id
    calls: dict[str, Callable[[], Any]] = {
        "health": client.health,
        "token_info": client.token_info,
        "incident": lambda: client.incident(incident, with_occurrences=5),
        "member": lambda: client.member(member["id"]),
        "api_token": lambda: client.api_token(token),
        "incidents": lambda: list(client.incidents(per_page=5)),
        "source_incidents": lambda: list(client.source_incidents(source)),
        "occurrences": lambda: list(client.occurrences(incident_id=incident)),
        "members": lambda: list(client.members()),
        "audit_logs": lambda: list(client.audit_logs()),
        "sources": lambda: list(client.sources()),
        "notes": lambda: list(client.notes(incident)),
        "member_incidents": lambda: list(client.member_incidents(member["id"])),
        "activity_logs": lambda: list(client.activity_logs(incident)),
        "incident_members": lambda: list(client.incident_members(incident)),
        "api_tokens": lambda: list(client.api_tokens()),
        "teams": lambda: list(client.teams()),
        "update_incident": lambda: client.update_incident(incident, severity="low"),
        "grant_access": lambda: client.grant_access(incident, member["id"]),
        "revoke_access": lambda: client.revoke_access(incident, member["id"]),
        "assign": lambda: client.assign(incident, member_id=member["id"]),
        "unassign": lambda: client.unassign(incident),
        "resolve": lambda: client.resolve(incident, secret_revoked=False),
        "reopen": lambda: client.reopen(incident),
        "ignore": lambda: client.ignore(other, reason="low_risk"),
        "share": lambda: client.share(incident),
        "unshare": lambda: client.unshare(incident),
        "add_note": lambda: client.add_note(incident, "served"),
        "update_note": lambda: client.update_note(
            incident, next(n.id for n in client.notes(incident, search="served")), "edited"),
        "delete_note": lambda: client.delete_note(
            incident, next(n.id for n in client.notes(incident, search="edited"))),
    }
    public = {name for name, member_ in inspect.getmembers(GitGuardianClient)
              if not name.startswith("_") and inspect.isfunction(member_)} - NOT_ENDPOINTS
    assert public == set(calls), f"not called: {public - set(calls)}; gone: {set(calls) - public}"
    for call in calls.values():
        call()  # raises NotFound / BadRequest (405) on an endpoint the sandbox lacks
    served = {key.split(" ", 1)[1] for key in client.request_counts}
    assert {"/v1/members/{id}/secret-incidents", "/v1/api_tokens/{id}",
            "/v1/incidents/secrets/{id}/activity-logs",
            "/v1/members/{id}/secret_incidents/{id}"} <= served
