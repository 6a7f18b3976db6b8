"""What each playbook should do to a generated workspace under its default policy.

Computed from the generator's own data (directory people, members, repositories, occurrences)
with rules written out here, independently of the playbook code, so tests and benchmarks can
check a flow's plan against it. Shape (incident ids as strings, as in ground_truth.json):

    {playbook: {"actions": {incident_id: {"action", "arguments", "reason"}},
                 "skipped": {incident_id: {"reason"}}}}

"skipped" lists incidents the playbook looks at and must leave alone, with why; incidents
outside a playbook's candidates are in neither.
"""
from __future__ import annotations

from collections import defaultdict
from fnmatch import fnmatchcase
from typing import Any

from codeowners import CodeOwners

from clients.models import OPEN_STATUSES
from sandbox.workspace import DirectoryPerson, Repository, Workspace

DEPARTED = "departed-developer-reassignment"
TEST_IGNORE = "test-directory-auto-ignore"
TRIAGE = "commit-author-triage"
PLAYBOOKS = (DEPARTED, TEST_IGNORE, TRIAGE)

# The test-directory playbook's default globs, matched by path segment.
TEST_DIRECTORIES = frozenset({"test", "tests", "__tests__", "spec", "testdata", "fixtures"})
TEST_FILE_GLOBS = ("*_test.go", "test_*.py", "*.spec.ts")
VETO_TAGS = frozenset({"PUBLICLY_EXPOSED", "PUBLICLY_LEAKED"})
# The generator's bot and no-reply identities (its own knowledge, not the playbooks' rules).
NOT_A_PERSON = frozenset({
    "dependabot[bot]@users.noreply.github.com", "ci-bot@corp.example",
    "renovate[bot]@users.noreply.github.com",
    "41898282+github-actions[bot]@users.noreply.github.com",
    "12345+someone@users.noreply.github.com", "98765+octodev@users.noreply.github.com",
    "noreply@corp.example",
})


def normalise(address: str | None) -> str:
    return (address or "").strip().casefold()


def is_test_path(path: str | None) -> bool:
    """A directory segment named exactly like a test folder, or a test file name."""
    if path is None:
        return False
    segments = path.split("/")
    if any(segment in TEST_DIRECTORIES for segment in segments[:-1]):
        return True
    return any(fnmatchcase(segments[-1], glob) for glob in TEST_FILE_GLOBS)


def parse_mailmap(text: str) -> dict[str, str]:
    """old e-mail (normalised) -> canonical e-mail, for lines `Name <canonical> <old>`."""
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or line.count("<") < 2:
            continue
        emails = [part.split(">", 1)[0] for part in line.split("<")[1:]]
        mapping[normalise(emails[1])] = emails[0]
    return mapping


class _Facts:
    """Lookups over the generated world: people by address, members by e-mail, repositories."""

    def __init__(self, workspace: Workspace) -> None:
        self.person_by_address: dict[str, DirectoryPerson] = {}
        self.person_by_dn: dict[str, DirectoryPerson] = {}
        for person in workspace.people:
            self.person_by_dn[person.dn.casefold()] = person
            for address in [person.email, *person.aliases]:
                self.person_by_address.setdefault(normalise(address), person)
        self.member_by_email: dict[str, dict[str, Any]] = {}
        for member in workspace.members:
            self.member_by_email.setdefault(normalise(member["email"]), member)
        self.repos: dict[str, Repository] = {r.full_name: r for r in workspace.repositories}
        self.mailmaps = {name: parse_mailmap(r.mailmap) for name, r in self.repos.items()}
        self.occurrences: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for occurrence in workspace.occurrences:
            self.occurrences[occurrence["incident_id"]].append(occurrence)
        self._touches: dict[str, dict[str, list[int]]] = {}
        self._owners: dict[str, CodeOwners] = {}

    def active_member(self, person: DirectoryPerson) -> dict[str, Any] | None:
        """The person's active workspace account, if they still work here."""
        if person.departed:
            return None
        for address in [person.email, *person.aliases]:
            member = self.member_by_email.get(normalise(address))
            if member is not None and member["active"]:
                return member
        return None

    def canonical(self, repo_name: str, address: str) -> tuple[str, str]:
        """An author address through .mailmap: (address, how) with how '' or 'mailmap'."""
        mapped = self.mailmaps.get(repo_name, {}).get(normalise(address))
        return (mapped, "mailmap") if mapped else (address, "")

    def committers_newest_first(self, repo_name: str, path: str) -> list[str]:
        repo = self.repos[repo_name]
        if repo_name not in self._touches:
            index: dict[str, list[int]] = defaultdict(list)
            for position, commit in enumerate(repo.commits):
                for file_path in commit.files:
                    index[file_path].append(position)
            self._touches[repo_name] = index
        return [repo.commits[i].author_email for i in reversed(self._touches[repo_name][path])]

    def code_owners(self, repo_name: str, path: str) -> list[str]:
        if repo_name not in self._owners:
            self._owners[repo_name] = CodeOwners(self.repos[repo_name].codeowners)
        return [owner for kind, owner in self._owners[repo_name].of(path) if kind == "EMAIL"]


def _latest(occurrences: list[dict[str, Any]]) -> dict[str, Any]:
    return max(occurrences, key=lambda o: (o["date"], o["id"]))


def _successor(facts: _Facts, departed: DirectoryPerson,
               occurrences: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """The reassignment chain of the departed-developer playbook's default policy."""
    manager = facts.person_by_dn.get((departed.manager_dn or "").casefold())
    for reason in ("manager", "managers_manager"):
        if manager is None:
            break
        member = facts.active_member(manager)
        if member is not None:
            return member, reason
        manager = facts.person_by_dn.get((manager.manager_dn or "").casefold())
    latest = _latest(occurrences)
    path, repo_name = latest["filepath"], latest["source"]["full_name"]
    if path is None or repo_name not in facts.repos:
        return None, "no_successor"
    for owner in facts.code_owners(repo_name, path):
        person = facts.person_by_address.get(normalise(owner))
        member = facts.active_member(person) if person else None
        if member is not None:
            return member, "codeowner"
    for author in facts.committers_newest_first(repo_name, path):
        address, _ = facts.canonical(repo_name, author)
        person = facts.person_by_address.get(normalise(address))
        member = facts.active_member(person) if person else None
        if member is not None:
            return member, "recent_committer"
    return None, "no_successor"


def _departed_playbook(workspace: Workspace, facts: _Facts) -> dict[str, Any]:
    actions: dict[str, Any] = {}
    skipped: dict[str, Any] = {}
    for incident in workspace.incidents:
        if incident["status"] != "ASSIGNED" or not incident["assignee_email"]:
            continue
        person = facts.person_by_address.get(normalise(incident["assignee_email"]))
        if person is None or not person.departed:
            continue  # unknown to the directory or still here: never a departure
        member, reason = _successor(facts, person, facts.occurrences[incident["id"]])
        key = str(incident["id"])
        if member is None:
            skipped[key] = {"reason": reason}
        else:
            actions[key] = {"action": "assign", "arguments": {"email": member["email"]},
                            "reason": reason}
    return {"actions": actions, "skipped": skipped}


def _test_playbook(workspace: Workspace, facts: _Facts) -> dict[str, Any]:
    actions: dict[str, Any] = {}
    skipped: dict[str, Any] = {}
    for incident in workspace.incidents:
        if incident["status"] not in OPEN_STATUSES:
            continue
        paths = [o["filepath"] for o in facts.occurrences[incident["id"]]]
        if not any(is_test_path(p) for p in paths):
            continue  # not a candidate worth explaining
        key = str(incident["id"])
        if incident["validity"] != "invalid":
            skipped[key] = {"reason": f"validity_{incident['validity']}"}
        elif VETO_TAGS.intersection(incident["tags"]):
            skipped[key] = {"reason": "veto_tag"}
        elif any(p is None for p in paths):
            skipped[key] = {"reason": "null_path"}
        elif not all(is_test_path(p) for p in paths):
            skipped[key] = {"reason": "production_path"}
        else:
            actions[key] = {"action": "ignore",
                            "arguments": {"ignore_reason": "test_credential"},
                            "reason": "all_test_paths"}
    return {"actions": actions, "skipped": skipped}


def _author_member(facts: _Facts, occurrence: dict[str, Any]) -> tuple[dict | None, str]:
    """The active member an occurrence's author is, and how we knew (or why not)."""
    address = occurrence["author_info"]
    if normalise(address) in NOT_A_PERSON:
        return None, "bot_or_noreply"
    address, how = facts.canonical(occurrence["source"]["full_name"], address)
    person = facts.person_by_address.get(normalise(address))
    if person is None:
        member = facts.member_by_email.get(normalise(address))
        if member is not None and member["active"]:
            return member, "member_author"
        return None, "not_a_member"
    if person.departed:
        return None, "departed_author"
    member = facts.active_member(person)
    if member is None:
        return None, "not_a_member"
    if not how and normalise(address) != normalise(person.email):
        how = "alias"
    return member, f"member_author_via_{how}" if how else "member_author"


def _triage_playbook(workspace: Workspace, facts: _Facts) -> dict[str, Any]:
    actions: dict[str, Any] = {}
    skipped: dict[str, Any] = {}
    for incident in workspace.incidents:
        if incident["status"] != "TRIGGERED":
            continue
        key = str(incident["id"])
        newest_first = sorted(facts.occurrences[incident["id"]],
                              key=lambda o: (o["date"], o["id"]), reverse=True)
        why_not = []
        for occurrence in newest_first:
            member, reason = _author_member(facts, occurrence)
            if member is not None:
                actions[key] = {"action": "assign", "arguments": {"email": member["email"]},
                                "reason": reason}
                break
            why_not.append(reason)
        else:
            reason = "departed_author" if "departed_author" in why_not else "no_member_author"
            skipped[key] = {"reason": reason}
    return {"actions": actions, "skipped": skipped}


def compute_ground_truth(workspace: Workspace) -> dict[str, Any]:
    facts = _Facts(workspace)
    return {
        DEPARTED: _departed_playbook(workspace, facts),
        TEST_IGNORE: _test_playbook(workspace, facts),
        TRIAGE: _triage_playbook(workspace, facts),
    }
