"""The export: byte-identical on a re-run, real git repositories whose shas and authors are the
ones the occurrences cite, a directory LDIF and ldap3 JSON that parse, and the ground truth."""
from __future__ import annotations

import base64
import json
import os
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import ldap3
import pytest

from sandbox.export import export, fast_import_stream, ldif_line, to_ldif
from sandbox.generator import generate
from sandbox.workspace import Commit, Repository, Workspace

NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return generate(5, 300, now=NOW)


@pytest.fixture(scope="module")
def exported(workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    export(workspace, out)
    return out


def _git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    done = subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)
    return done.stdout.decode()


def _files(root: Path) -> dict[str, bytes]:
    """Every exported file but git's own bookkeeping (index timestamps, hooks)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def test_export_is_byte_identical_on_a_rerun(workspace: Workspace, exported: Path,
                                             tmp_path: Path) -> None:
    export(generate(5, 300, now=NOW), tmp_path)
    first, again = _files(exported), _files(tmp_path)
    assert first.keys() == again.keys()
    assert [k for k in first if first[k] != again[k]] == []
    for repository in workspace.repositories:
        repo = Path("repos") / repository.full_name
        assert _git(exported / repo, "rev-parse", "main") == _git(tmp_path / repo, "rev-parse",
                                                                  "main")
    expected = {"directory.ldif", "directory.json", "ground_truth.json", "workspace.json"}
    assert expected <= set(first)


def test_repositories_hold_the_cited_commits_files_and_authors(workspace: Workspace,
                                                               exported: Path) -> None:
    by_repo: dict[str, list[dict]] = {}
    for occurrence in workspace.occurrences:
        by_repo.setdefault(occurrence["source"]["full_name"], []).append(occurrence)
    checked = 0
    for repository in workspace.repositories:
        repo = exported / "repos" / repository.full_name
        assert _git(repo, "rev-parse", "main").strip() == repository.commits[-1].sha
        log = _git(repo, "log", "--format=%x01%H%x02%an%x02%ae%x02", "--name-only", "-z",
                   "--no-renames")
        commits: dict[str, tuple[str, str, set[str]]] = {}
        for record in log.split("\x01")[1:]:
            sha, name, email, files = record.split("\x02")
            commits[sha] = (name, email, {f for f in files.replace("\n", "\x00").split("\x00")
                                          if f})
        assert list(commits) == [c.sha for c in reversed(repository.commits)]
        for occurrence in by_repo.get(repository.full_name, []):
            if occurrence["sha"] is None:
                continue
            name, email, files = commits[occurrence["sha"]]
            assert (name, email) == (occurrence["author_name"], occurrence["author_info"])
            assert occurrence["filepath"] in files
            checked += 1
        worktree = {str(p.relative_to(repo)) for p in repo.rglob("*")
                    if p.is_file() and ".git" not in p.relative_to(repo).parts}
        assert repository.codeowners_path in worktree and ".mailmap" in worktree
        assert (repo / repository.codeowners_path).read_text() == repository.codeowners
    assert checked > 500


def test_mailmap_maps_old_addresses_to_canonical_ones(workspace: Workspace,
                                                      exported: Path) -> None:
    repository = workspace.repositories[0]
    lines = [line for line in repository.mailmap.splitlines() if not line.startswith("#")]
    assert lines
    canonical, old = lines[0].split("<")[1].rstrip("> "), lines[0].split("<")[2].rstrip(">")
    answer = _git(exported / "repos" / repository.full_name, "check-mailmap", f"X <{old}>")
    assert f"<{canonical}>" in answer


def test_computed_shas_equal_gits_for_awkward_paths_and_names(tmp_path: Path) -> None:
    from sandbox.repositories import _RepoHistory

    history = _RepoHistory()
    repository = Repository(full_name="acme/awkward")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    for files, name, email in [
        ({"a/b/c.txt": "1\n", "a/b.txt": "x", "a.txt": "y", "a-b/c": "z"}, "Zoë Ångström",
         "zoe@corp.example"),
        ({"docs/naïve café/s.md": "s", "src/<script>alert(1)</script>/c.py": "c",
          "config\\windows\\prod.ini": "w", "-rf/--output=x": "o"}, "Evil", "evil*)(uid=*@x"),
        ({"a/b/c.txt": "2\n"}, "Back Slash", "back\\slash@corp.example"),
    ]:
        sha = history.commit(name, email, when, files, "msg\n")
        repository.commits.append(Commit(sha, name, email, when, files, "msg\n"))
    _git(tmp_path, "init", "-q", "--initial-branch=main", ".")
    subprocess.run(["git", "fast-import", "--quiet", "--done"], cwd=tmp_path, check=True,
                   input=fast_import_stream(repository), capture_output=True)
    log = _git(tmp_path, "log", "--format=%H").split()
    assert log == [c.sha for c in reversed(repository.commits)]


def parse_ldif(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    entries = []
    for block in text.strip().split("\n\n")[1:]:  # after "version: 1"
        attributes: dict[str, list[str]] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            value = base64.b64decode(value[2:]).decode() if value.startswith(":") \
                else value[1:]
            attributes.setdefault(name, []).append(value)
        entries.append((attributes.pop("dn")[0], attributes))
    return entries


def test_ldif_parses_and_carries_every_leaver_marker(workspace: Workspace,
                                                     exported: Path) -> None:
    text = (exported / "directory.ldif").read_text(encoding="utf-8")
    assert text.isascii()  # anything else travels base64-encoded
    entries = parse_ldif(text)
    assert [dn for dn, _ in entries[:3]] == [
        "dc=corp,dc=example", "ou=people,dc=corp,dc=example", "ou=leavers,dc=corp,dc=example"]
    people = dict(entries[3:])
    assert len(people) == len(workspace.people)
    for person in workspace.people:
        entry = people[person.dn]
        assert "ggPerson" in entry["objectClass"] and "inetOrgPerson" in entry["objectClass"]
        assert entry["mail"] == [person.email]
        assert entry["displayName"] == [person.display_name]  # non-ASCII and markup survive
        assert entry.get("mailAlternateAddress", []) == person.aliases
        assert entry.get("manager") == ([person.manager_dn] if person.manager_dn else None)
        disabled = int(entry["userAccountControl"][0]) & 2 == 2
        assert disabled == ("disabled_bit" in person.leaver_markers)
        assert (entry["employeeType"] == ["former"]) == ("employee_type" in person.leaver_markers)
        assert ("pwdAccountLockedTime" in entry) == ("locked" in person.leaver_markers)
    assert any(not p.display_name.isascii() for p in workspace.people)
    assert any(p.display_name.startswith("<") for p in workspace.people)


def test_ldif_values_that_need_it_are_base64() -> None:
    for value in ["<script>", " leading", "trailing ", ":colon", "Zoë", "a\nb", "nul\0"]:
        line = ldif_line("cn", value)
        assert line.startswith("cn:: ") and base64.b64decode(line[5:]).decode() == value
    assert ldif_line("mail", "evil*)(uid=*@corp.example") == "mail: evil*)(uid=*@corp.example"
    text = to_ldif([("uid=x,dc=corp,dc=example", {"cn": ["Zoë"]})])
    assert parse_ldif(text) == [("uid=x,dc=corp,dc=example", {"cn": ["Zoë"]})]


def test_directory_json_loads_into_ldap3s_mock(workspace: Workspace, exported: Path) -> None:
    server = ldap3.Server("sandbox-directory")
    connection = ldap3.Connection(server, client_strategy=ldap3.MOCK_SYNC)
    connection.strategy.entries_from_json(str(exported / "directory.json"))
    connection.bind()
    person = next(p for p in workspace.people if p.aliases)
    assert connection.search("ou=people,dc=corp,dc=example" if "leavers_ou" not in
                             person.leaver_markers else "ou=leavers,dc=corp,dc=example",
                             f"(mailAlternateAddress={person.aliases[0]})",
                             attributes=["mail", "manager"])
    assert connection.entries[0].mail.value == person.email
    assert connection.search("dc=corp,dc=example", "(employeeType=former)", attributes=["uid"])
    former = {e.uid.value for e in connection.entries}
    assert former == {p.uid for p in workspace.people if "employee_type" in p.leaver_markers}


def test_ground_truth_and_workspace_files(workspace: Workspace, exported: Path) -> None:
    truth = json.loads((exported / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth == workspace.ground_truth
    api = json.loads((exported / "workspace.json").read_text(encoding="utf-8"))
    assert api["incidents"] == workspace.incidents
    assert api["members"] == workspace.members and api["sources"] == workspace.sources
    assert len(api["occurrences"]) == len(workspace.occurrences)
    assert api["occurrences"][0]["source"]["full_name"]
    assert "tokens" not in api  # token secrets are invented by the server, never exported


@pytest.mark.slapd
def test_ldif_loads_into_a_real_slapd(workspace: Workspace, exported: Path,
                                      slapd_factory) -> None:
    server = slapd_factory()  # a private server: the shared one stays as other tests left it
    added = server.load_ldif((exported / "directory.ldif").read_text(encoding="utf-8"))
    assert added == len(workspace.people)
    with server.connection() as conn:
        conn.search("dc=corp,dc=example", "(userAccountControl:1.2.840.113556.1.4.803:=2)",
                    attributes=["uid"], paged_size=1000)
        disabled = {e["attributes"]["uid"][0] for e in conn.response
                    if e.get("type") == "searchResEntry"}
        conn.search("ou=leavers,dc=corp,dc=example", "(objectClass=inetOrgPerson)",
                    attributes=["uid"], paged_size=1000)
        leavers = {e["attributes"]["uid"][0] for e in conn.response
                   if e.get("type") == "searchResEntry"}
        conn.search("dc=corp,dc=example", "(pwdAccountLockedTime=*)", attributes=["uid"],
                    paged_size=1000)
        locked = {e["attributes"]["uid"][0] for e in conn.response
                  if e.get("type") == "searchResEntry"}
        bobby = next(p for p in workspace.people if p.display_name.startswith("<"))
        conn.search("dc=corp,dc=example", f"(mail={bobby.email})", attributes=["displayName"])
        assert conn.entries[0].displayName.value == bobby.display_name
    marked = {m: {p.uid for p in workspace.people if m in p.leaver_markers}
              for m in ("disabled_bit", "leavers_ou", "locked")}
    assert (disabled, leavers, locked) == (marked["disabled_bit"], marked["leavers_ou"],
                                           marked["locked"])


def test_departed_successors_agree_with_git_and_codeowners(workspace: Workspace,
                                                           exported: Path) -> None:
    """The CODEOWNERS and committer steps of the ground truth, re-derived from the real repos."""
    from codeowners import CodeOwners

    from sandbox.ground_truth import DEPARTED, normalise

    people = {normalise(a): p for p in workspace.people for a in [p.email, *p.aliases]}
    by_dn = {p.dn: p for p in workspace.people}
    members = {normalise(m["email"]): m for m in workspace.members}

    def eligible(address: str) -> bool:
        person = people.get(normalise(address))
        member = members.get(normalise(person.email)) if person else None
        return bool(person and not person.departed and member and member["active"])

    incidents = {str(i["id"]): i for i in workspace.incidents}
    latest: dict[int, dict] = {}
    for occurrence in workspace.occurrences:
        current = latest.get(occurrence["incident_id"])
        if current is None or occurrence["date"] > current["date"]:
            latest[occurrence["incident_id"]] = occurrence
    repositories = {r.full_name: r for r in workspace.repositories}
    checked = Counter()
    for key, action in workspace.ground_truth[DEPARTED]["actions"].items():
        if action["reason"] not in ("codeowner", "recent_committer"):
            continue
        departed = people[normalise(incidents[key]["assignee_email"])]
        manager = by_dn.get(departed.manager_dn)
        assert manager is None or not eligible(manager.email)
        grand = by_dn.get(manager.manager_dn) if manager and manager.manager_dn else None
        assert grand is None or not eligible(grand.email)
        occurrence = latest[int(key)]
        repo = exported / "repos" / occurrence["source"]["full_name"]
        text = (repo / repositories[occurrence["source"]["full_name"]].codeowners_path).read_text()
        owners = [o for kind, o in CodeOwners(text).of(occurrence["filepath"]) if kind == "EMAIL"]
        chosen = normalise(action["arguments"]["email"])
        if action["reason"] == "codeowner":
            first = next(o for o in owners if eligible(o))
            assert normalise(people[normalise(first)].email) == chosen
        else:
            assert not any(eligible(o) for o in owners)
            authors = _git(repo, "log", "--use-mailmap", "--format=%aE", "--",
                           f":(literal){occurrence['filepath']}").split()
            first = next(a for a in authors if eligible(a))
            assert normalise(people[normalise(first)].email) == chosen
        checked[action["reason"]] += 1
    assert checked["codeowner"] and checked["recent_committer"]
