"""The workspace generator: determinism, API shapes, realistic mixes, hostile values, and a
ground truth that agrees with the rules it states."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.generator import generate, start_of_today
from sandbox.ground_truth import (
    DEPARTED,
    NOT_A_PERSON,
    PLAYBOOKS,
    TEST_IGNORE,
    TRIAGE,
    VETO_TAGS,
    is_test_path,
    normalise,
    parse_mailmap,
)
from sandbox.workspace import Workspace

NOW = datetime(2026, 11, 1, tzinfo=UTC)
# shared/ sits beside the repository's clone, in development and in CI
RECORDED = Path(__file__).resolve().parents[3] / "shared" / "contract" / "recorded"


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return generate(7, 2000, now=NOW)


def _dump(workspace: Workspace) -> str:
    return json.dumps({
        "members": workspace.members, "sources": workspace.sources,
        "incidents": workspace.incidents, "occurrences": workspace.occurrences,
        "people": [asdict(p) for p in workspace.people],
        "repos": [[c.sha for c in r.commits] + [r.codeowners, r.mailmap]
                  for r in workspace.repositories],
        "tokens": [asdict(t) for t in workspace.tokens], "truth": workspace.ground_truth,
    }, sort_keys=True)


def test_same_seed_same_workspace_and_other_seed_differs() -> None:
    first, again, other = (generate(seed, 300, now=NOW) for seed in (11, 11, 12))
    assert _dump(first) == _dump(again)
    assert _dump(first) != _dump(other)
    assert [t.id for t in first.tokens] == [t.id for t in again.tokens]
    assert all(t.secret == "" for t in first.tokens)


def test_default_now_is_the_start_of_the_utc_day() -> None:
    workspace = generate(3, 20)
    assert workspace.now == start_of_today()
    assert (workspace.now.hour, workspace.now.minute, workspace.now.second) == (0, 0, 0)
    assert workspace.now.tzinfo is not None


def _recorded(name: str) -> list[dict[str, Any]]:
    cassette = yaml.safe_load((RECORDED / f"{name}.yaml").read_text())
    body = json.loads(cassette["interactions"][0]["response"]["body"]["string"])
    return body if isinstance(body, list) else [body]


def _shape_errors(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Same keys at every level; same JSON type wherever both sides are not null."""
    if ours is None or theirs is None:
        return []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{where}: {type(ours).__name__} is not an object"]
        errors = [f"{where}: keys differ {sorted(set(ours) ^ set(theirs))}"] \
            if set(ours) != set(theirs) else []
        for key in set(ours) & set(theirs):
            errors += _shape_errors(ours[key], theirs[key], f"{where}.{key}")
        return errors
    if isinstance(theirs, list):
        if not isinstance(ours, list):
            return [f"{where}: not a list"]
        return _shape_errors(ours[0], theirs[0], where + "[]") if ours and theirs else []
    if isinstance(theirs, bool) or isinstance(ours, bool):
        return [] if type(ours) is type(theirs) else [f"{where}: bool vs {type(ours)}"]
    if isinstance(theirs, (int, float)) and isinstance(ours, (int, float)):
        return []
    return [] if type(ours) is type(theirs) else [f"{where}: {type(ours)} vs {type(theirs)}"]


@pytest.mark.parametrize("cassette, attribute", [
    ("list_incidents_basic", "incidents"), ("list_occurrences_basic", "occurrences"),
    ("list_members", "members"),
])
def test_objects_have_the_recorded_shape(workspace: Workspace, cassette: str,
                                         attribute: str) -> None:
    recorded = _recorded(cassette)
    errors = []
    for ours in getattr(workspace, attribute):
        for theirs in recorded:
            errors += _shape_errors(ours, theirs)
    assert not errors, sorted(set(errors))[:10]
    # nested objects the recordings leave empty still have a shape worth checking
    if attribute == "incidents":
        assert all(i["occurrences"] is None and i["share_url"] is None
                   for i in workspace.incidents)
        url = workspace.incidents[0]["gitguardian_url"]
        assert url == (f"https://dashboard.gitguardian.com/workspace/{workspace.workspace_id}"
                       f"/incidents/{workspace.incidents[0]['id']}")


def test_embedded_source_matches_the_sources_list(workspace: Workspace) -> None:
    by_id = {s["id"]: s for s in workspace.sources}
    assert 20 <= len(by_id) <= 60
    for occurrence in workspace.occurrences[:500]:
        assert occurrence["source"] == by_id[occurrence["source"]["id"]]
    assert {s["type"] for s in workspace.sources} == {"github", "gitlab"}
    assert all("/" in s["full_name"] for s in workspace.sources)


def test_realistic_mixes(workspace: Workspace) -> None:
    statuses = Counter(i["status"] for i in workspace.incidents)
    share = {k: v / len(workspace.incidents) for k, v in statuses.items()}
    assert 0.28 < share["TRIGGERED"] < 0.42 and 0.18 < share["ASSIGNED"] < 0.32
    assert 0.18 < share["RESOLVED"] < 0.32 and 0.09 < share["IGNORED"] < 0.21
    assert {i["validity"] for i in workspace.incidents} == {
        "valid", "invalid", "no_checker", "failed_to_check", "unknown"}
    assert len({i["detector"]["name"] for i in workspace.incidents}) >= 12
    assert all(0 <= i["risk_score"] <= 100 for i in workspace.incidents)
    tags = Counter(t for i in workspace.incidents for t in i["tags"])
    assert tags["TEST_FILE"] and tags["PUBLICLY_EXPOSED"] and tags["PUBLICLY_LEAKED"]
    assert {m["access_level"] for m in workspace.members} == {
        "owner", "manager", "member", "restricted"}
    assert any(not m["active"] for m in workspace.members)
    assert all(isinstance(m["id"], int) for m in workspace.members)
    one_year = NOW.replace(year=NOW.year - 1).isoformat()[:19]
    assert all(one_year <= i["date"] <= NOW.isoformat()[:19] for i in workspace.incidents)


def test_incidents_agree_with_their_occurrences(workspace: Workspace) -> None:
    by_incident: dict[int, list[dict]] = {}
    for occurrence in workspace.occurrences:
        by_incident.setdefault(occurrence["incident_id"], []).append(occurrence)
    members = {m["id"]: m for m in workspace.members}
    for incident in workspace.incidents:
        occurrences = by_incident[incident["id"]]
        assert incident["occurrences_count"] == len(occurrences)
        assert incident["date"] == min(o["date"] for o in occurrences)
        assert incident["triggered_at"] >= incident["date"]
        assert len({o["date"] for o in occurrences}) == len(occurrences)  # no ties
        if incident["status"] == "ASSIGNED":
            assert members[incident["assignee_id"]]["email"] == incident["assignee_email"]
        if incident["status"] == "TRIGGERED":
            assert incident["assignee_id"] is None and incident["assignee_email"] is None
        if incident["status"] == "RESOLVED":
            assert incident["resolver_id"] in members and incident["resolved_at"]
        if incident["status"] == "IGNORED":
            assert incident["ignorer_id"] in members and incident["ignore_reason"]
    sizes = [i["occurrences_count"] for i in workspace.incidents]
    assert Counter(s <= 3 for s in sizes)[True] > 0.8 * len(sizes)
    assert any(s > 20 for s in sizes) and any(s > 100 for s in sizes)
    assert max(sizes) <= 150


def test_paths_follow_test_conventions_and_look_alikes(workspace: Workspace) -> None:
    paths = [o["filepath"] for o in workspace.occurrences if o["filepath"]]
    for marker in ("tests/", "test/", "__tests__/", "spec/", "testdata/", "fixtures/"):
        assert any(f"/{marker}" in f"/{p}" for p in paths), marker
    for suffix in ("_test.go", ".spec.ts"):
        assert any(p.endswith(suffix) for p in paths), suffix
    assert any(p.rsplit("/", 1)[-1].startswith("test_") and p.endswith(".py") for p in paths)
    for look_alike in ("latest/", "contest/", "attestation/", "src/test_utils_prod/config.py"):
        assert any(look_alike in p for p in paths), look_alike
    assert any(None is o["filepath"] for o in workspace.occurrences)


def test_authors_cover_every_kind_and_hostile_values(workspace: Workspace) -> None:
    authors = {o["author_info"] for o in workspace.occurrences}
    names = {o["author_name"] for o in workspace.occurrences}
    assert "dependabot[bot]@users.noreply.github.com" in authors
    assert "ci-bot@corp.example" in authors
    assert any(a.endswith("@users.noreply.github.com") and "+" in a for a in authors)
    assert any("*)(" in a for a in authors) and any("\\" in a for a in authors)
    assert any("<script>" in n for n in names) and any(not n.isascii() for n in names)
    assert any(len(a) > 150 for a in authors) and any(len(n) > 150 for n in names)
    assert any("<script>" in (o["filepath"] or "") for o in workspace.occurrences)
    assert any(o["sha"] is None for o in workspace.occurrences)
    people = {p.email for p in workspace.people}
    departed = {p.email for p in workspace.people if p.departed}
    member_emails = {normalise(m["email"]) for m in workspace.members}
    assert authors & departed and authors & people - departed
    assert any(normalise(a) not in member_emails for a in authors & people)
    assert any("<script>" in m["name"] for m in workspace.members)


def test_directory_people(workspace: Workspace) -> None:
    people = workspace.people
    by_dn = {p.dn: p for p in people}
    assert all(p.email == p.email.lower() and p.email.endswith("@corp.example") for p in people)
    assert len({p.uid for p in people}) == len(people)
    markers = Counter(m for p in people for m in p.leaver_markers)
    assert set(markers) == {"leavers_ou", "employee_type", "disabled_bit", "locked"}
    assert all(bool(p.leaver_markers) == p.departed for p in people)
    assert all(p.dn.endswith("ou=leavers,dc=corp,dc=example") == ("leavers_ou" in p.leaver_markers)
               for p in people)
    assert any(len(p.leaver_markers) > 1 for p in people)
    assert any(p.aliases for p in people)
    addresses = [a for p in people for a in [p.email, *p.aliases]]
    assert len(set(addresses)) == len(addresses)  # an address names one person only
    assert all(p.manager_dn in by_dn for p in people if p.manager_dn)
    depth = []
    for person in people:
        chain, current = 0, person
        while current.manager_dn:
            current, chain = by_dn[current.manager_dn], chain + 1
        depth.append(chain)
    assert max(depth) == 3 and sum(d == 0 for d in depth) == 1
    assert any(by_dn[p.manager_dn].departed for p in people if p.manager_dn)
    # members listed with another case or stray whitespace than the directory's address
    listed = {m["email"] for m in workspace.members}
    assert any(e != e.strip().lower() and e.strip().lower() in {p.email for p in people}
               for e in listed)
    assert any(e != e.strip() for e in listed)


@pytest.mark.parametrize("path, verdict", [
    ("tests/unit/test_x.py", True), ("test/config.yaml", True), ("src/__tests__/a.js", True),
    ("spec/models/user_spec.rb", True), ("pkg/a/testdata/b.json", True),
    ("tests/fixtures/a.yaml", True), ("fixtures/dev.env", True), ("pkg/db/db_test.go", True),
    ("src/core/test_client.py", True), ("web/src/api/client.spec.ts", True),
    ("latest/config.py", False), ("contest/a/b.py", False), ("attestation/x/config.go", False),
    ("src/test_utils_prod/config.py", False), ("testing_tools/a.py", False),
    ("src/core/client_test.py", False), ("src/core/tests.py", False),
    ("src/core/client.spec.js", False), ("src/core/test_db.json", False), ("test", False),
    ("Tests/a.py", False), (None, False),
])
def test_test_path_rule(path: str | None, verdict: bool) -> None:
    assert is_test_path(path) is verdict


# --- ground truth --------------------------------------------------------------------------

def _facts(workspace: Workspace):
    people = {}
    for person in workspace.people:
        for address in [person.email, *person.aliases]:
            people[normalise(address)] = person
    members = {normalise(m["email"]): m for m in workspace.members}
    occurrences: dict[int, list[dict]] = {}
    for occurrence in workspace.occurrences:
        occurrences.setdefault(occurrence["incident_id"], []).append(occurrence)
    return people, members, occurrences


def test_ground_truth_has_work_for_every_playbook(workspace: Workspace) -> None:
    truth = workspace.ground_truth
    assert set(truth) == set(PLAYBOOKS)
    for playbook in PLAYBOOKS:
        assert truth[playbook]["actions"], playbook
        assert not set(truth[playbook]["actions"]) & set(truth[playbook]["skipped"])
    reasons = Counter(a["reason"] for a in truth[DEPARTED]["actions"].values())
    assert set(reasons) == {"manager", "managers_manager", "codeowner", "recent_committer"}
    assert Counter(s["reason"] for s in truth[DEPARTED]["skipped"].values())["no_successor"]
    near_misses = Counter(s["reason"] for s in truth[TEST_IGNORE]["skipped"].values())
    for reason in ("production_path", "veto_tag", "validity_valid", "null_path"):
        assert near_misses[reason], reason
    open_count = sum(i["status"] in ("TRIGGERED", "ASSIGNED") for i in workspace.incidents)
    assert 0.04 < len(truth[TEST_IGNORE]["actions"]) / open_count < 0.10
    triage = Counter(a["reason"] for a in truth[TRIAGE]["actions"].values())
    assert triage["member_author_via_mailmap"] and triage["member_author_via_alias"]


def test_ground_truth_assignees_are_active_members_still_here(workspace: Workspace) -> None:
    people, members, _ = _facts(workspace)
    for playbook in (DEPARTED, TRIAGE):
        for action in workspace.ground_truth[playbook]["actions"].values():
            email = action["arguments"]["email"]
            assert action["action"] == "assign"
            assert email in {m["email"] for m in workspace.members}  # as the API lists it
            assert members[normalise(email)]["active"]
            assert normalise(email) not in NOT_A_PERSON
            assert not people[normalise(email)].departed


def test_departed_truth_only_for_open_incidents_of_departed_assignees(
        workspace: Workspace) -> None:
    people, _, _ = _facts(workspace)
    incidents = {str(i["id"]): i for i in workspace.incidents}
    truth = workspace.ground_truth[DEPARTED]
    for key in [*truth["actions"], *truth["skipped"]]:
        incident = incidents[key]
        assert incident["status"] == "ASSIGNED"
        assert people[normalise(incident["assignee_email"])].departed
    expected = {str(i["id"]) for i in workspace.incidents if i["status"] == "ASSIGNED"
                and normalise(i["assignee_email"]) in people
                and people[normalise(i["assignee_email"])].departed}
    assert expected == set(truth["actions"]) | set(truth["skipped"])
    by_dn = {p.dn: p for p in workspace.people}
    for key, action in truth["actions"].items():
        departed = people[normalise(incidents[key]["assignee_email"])]
        successor = people[normalise(action["arguments"]["email"])]
        if action["reason"] == "manager":
            assert successor.dn == departed.manager_dn
        if action["reason"] == "managers_manager":
            assert successor.dn == by_dn[departed.manager_dn].manager_dn


def test_test_ignore_truth_follows_its_rule(workspace: Workspace) -> None:
    _, _, occurrences = _facts(workspace)
    expected = {
        str(i["id"]) for i in workspace.incidents
        if i["status"] in ("TRIGGERED", "ASSIGNED") and i["validity"] == "invalid"
        and not VETO_TAGS & set(i["tags"])
        and all(is_test_path(o["filepath"]) for o in occurrences[i["id"]])
    }
    actions = workspace.ground_truth[TEST_IGNORE]["actions"]
    assert set(actions) == expected
    assert all(a == {"action": "ignore", "arguments": {"ignore_reason": "test_credential"},
                     "reason": "all_test_paths"} for a in actions.values())


def test_triage_truth_picks_the_newest_member_author(workspace: Workspace) -> None:
    people, members, occurrences = _facts(workspace)
    sources = {s["id"]: s["full_name"] for s in workspace.sources}
    mailmaps = {r.full_name: parse_mailmap(r.mailmap) for r in workspace.repositories}
    incidents = {str(i["id"]): i for i in workspace.incidents}
    truth = workspace.ground_truth[TRIAGE]
    assert all(incidents[k]["status"] == "TRIGGERED" for k in truth["actions"])
    for key, action in truth["actions"].items():
        newest = sorted(occurrences[int(key)], key=lambda o: o["date"], reverse=True)
        for occurrence in newest:
            address = normalise(occurrence["author_info"])
            address = normalise(mailmaps[sources[occurrence["source"]["id"]]].get(address,
                                                                                 address))
            person = people.get(address)
            if person and not person.departed and address not in NOT_A_PERSON:
                member = members.get(normalise(person.email))
                if member and member["active"]:
                    assert action["arguments"]["email"] == member["email"]
                    break
        else:
            pytest.fail(f"incident {key}: no member author found")
