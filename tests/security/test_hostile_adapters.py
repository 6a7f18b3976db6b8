"""Hostile input corpus (test_hostile_corpus.py), adapter level: the directory and git
adapters against a real slapd and real repositories, given addresses, DNs, source names and
paths crafted to widen a search, smuggle an option or escape a directory.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

# --------------------------------------------------------------------------- directory adapter

HOSTILE_ADDRESSES: dict[str, str] = {
    "star-local-part": "*@corp.example",
    "star-everything": "*",
    "filter-close-and-or": "*)(|(mail=*)@corp.example",
    "filter-objectclass": "x@corp.example)(objectClass=*",
    "escaped-star-literal": "\\2a@corp.example",
    "nul-then-filter": "x@corp.example\x00)(mail=*",
    "parenthesised-filter": "(mail=*)@corp.example",
    "and-true-filter": "admin)(&)@corp.example",
    "uid-wildcard": "*)(uid=*))(|(uid=*@corp.example",
    "newline-filter": "a@corp.example\n(mail=*)",
    "non-ascii": "\u00fcn\u00efc\u00f8d\u00e9@corp.example",
    "very-long": "b" * 300 + "@corp.example",
    "dn-like": "cn=admin,dc=corp,dc=example",
}


@pytest.fixture(scope="module")
def directory(sandbox_directory):
    from clients.directory import Directory, DirectorySettings

    settings = DirectorySettings(
        url=sandbox_directory.url, bind_dn=sandbox_directory.bind_dn,
        password=sandbox_directory.password, base_dn="dc=corp,dc=example",
        leavers_ou="ou=leavers,dc=corp,dc=example",
    )
    with Directory(settings) as adapter:
        yield adapter


@pytest.fixture(scope="module")
def known_person(sandbox_workspace):
    return next(p for p in sandbox_workspace.people if not p.departed)


@pytest.mark.slapd
@pytest.mark.parametrize("name", sorted(HOSTILE_ADDRESSES))
def test_directory_lookup_of_hostile_address_never_widens(name, directory, known_person):
    from clients.directory import Status

    hostile = HOSTILE_ADDRESSES[name]
    prefix = known_person.email.split("@")[0][:3]
    variants = [hostile, hostile.replace("x@", f"{prefix}*@"), f"{prefix}*@corp.example"]
    directory._by_email.clear()  # every case searches the server, not the cache
    before = directory.entries_read
    answers = directory.lookup([known_person.email, *variants])
    # The honest address is answered as without the hostile ones in its batch...
    assert answers[known_person.email.lower()].status is Status.ACTIVE
    # ...and no hostile one matches anybody: at most the one honest entry came back.
    for variant in variants:
        assert answers[variant.strip().casefold()].status is Status.UNKNOWN, variant
    assert directory.entries_read - before <= 1


@pytest.mark.slapd
@pytest.mark.parametrize("dn", ["*", "uid=*,ou=people,dc=corp,dc=example",
                                "uid=x)(objectClass=*,ou=people,dc=corp,dc=example"])
def test_directory_person_at_hostile_dn_finds_nobody(dn, directory):
    from clients.directory import Status

    assert directory.person_at(dn).status in (Status.UNKNOWN, Status.ERROR)


# --------------------------------------------------------------------------- git adapter

def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "Dev One", "GIT_AUTHOR_EMAIL": "dev.one@corp.example",
           "GIT_COMMITTER_NAME": "Dev One", "GIT_COMMITTER_EMAIL": "dev.one@corp.example",
           "HOME": str(cwd), "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def _repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "initial")
    return path


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mirrors")
    _repo(root / "mirrors" / "acme" / "app", {
        "src/app.py": "print('app')\n", "tests/test_app.py": "pass\n",
        "CODEOWNERS": "* owner@corp.example\n",
    })
    outside = _repo(root / "outside", {"secret.txt": "not yours\n"})
    (root / "mirrors" / "acme" / "escape").symlink_to(outside)
    return root / "mirrors"


HOSTILE_SOURCES = {
    "parent": "../outside",
    "nested-parent": "acme/../../outside",
    "absolute": "/etc",
    "home": "~root/x",
    "backslashes": "acme\\..\\..\\outside",
    "nul": "acme/app\x00",
    "option": "--upload-pack=touch pwned",
    "option-segment": "acme/-c core.sshCommand=touch pwned",
    "symlink-out-of-root": "acme/escape",
    "dot-segment": "acme/./app",
    "empty-segment": "acme//app",
    "empty": "",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_SOURCES))
def test_git_refuses_hostile_source_names(name, mirrors):
    from clients.git import GitRepositories, RepositoryMissing

    repos = GitRepositories(mirrors)
    source = HOSTILE_SOURCES[name]
    assert not repos.available(source)
    with pytest.raises(RepositoryMissing):
        repos.recent_committers(source, "src/app.py")
    assert repos.calls == 0  # refused before any git process
    assert repos.recent_committers("acme/app", "src/app.py")[0].email == "dev.one@corp.example"


HOSTILE_REPO_PATHS = [
    "--upload-pack=touch {out}/pwned",
    "--output={out}/pwned",
    "-o{out}/pwned",
    "../../etc/passwd",
    ":(glob)**",
    "*",
    "src/*",
    "src/app.py\x00--output={out}/pwned",
]


@pytest.mark.parametrize("template", HOSTILE_REPO_PATHS)
def test_git_treats_hostile_paths_as_data(template, mirrors, tmp_path):
    from clients.git import GitRepositories

    repos = GitRepositories(mirrors)
    hostile = template.format(out=tmp_path)
    found = repos.last_commits("acme/app", [hostile, "src/app.py"])
    assert set(found) == {"src/app.py"}  # the honest path is answered as usual
    assert repos.recent_committers("acme/app", hostile) == []
    owners = repos.codeowners_many("acme/app", [hostile])[hostile]
    assert owners in ([], ["owner@corp.example"])  # a name matched by "*", or refused
    assert not list(tmp_path.iterdir()), "git must never write a file named by a path"


def test_git_ignores_option_like_shas_and_addresses(mirrors):
    from clients.git import GitRepositories

    repos = GitRepositories(mirrors)
    head = _git(mirrors / "acme" / "app", "rev-parse", "HEAD").strip()
    authors = repos.commit_authors("acme/app", ["--all", "HEAD", "-p", "abc;id", head])
    assert set(authors) == {head}
    mapped = repos.mailmap("acme/app", ["--help@corp.example", "<evil>@x", "a\n<b>"])
    assert mapped == {"--help@corp.example": "--help@corp.example"}
