"""The git adapter against real repositories built in a temp dir."""
from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clients.git import Author, GitError, GitRepositories, RepositoryMissing

ADA = ("Ada Lovelace", "ada.lovelace@corp.example")
GRACE = ("Grace Hopper", "grace.hopper@corp.example")
LINUS = ("Linus T", "linus@corp.example")


def _at(day: int) -> str:
    return f"2024-03-{day:02d}T12:00:00+00:00"


# -- locating repositories ------------------------------------------------------------------------


def test_path_for_uses_the_mirrors_root_and_a_mapping_wins(make_repo, mirrors, tmp_path):
    make_repo("acme/payments-api").commit({"README": "x"})
    elsewhere = tmp_path / "elsewhere"
    repos = GitRepositories(mirrors, mapping={"acme/other": elsewhere})
    assert repos.path_for("acme/payments-api") == (mirrors / "acme/payments-api").resolve()
    assert repos.available("acme/payments-api")
    assert repos.path_for("acme/other") == elsewhere
    assert not repos.available("acme/other")  # mapped, but not cloned
    assert not repos.available("acme/unknown")


@pytest.mark.parametrize(
    "full_name",
    ["../outside", "acme/../../etc", "/etc/passwd", "acme//x", "./acme", "~root/x",
     "acme\\..\\x", "", "acme/x\x00", "-acme/x", "acme/--upload-pack=x"],
)
def test_traversal_and_option_like_source_names_are_refused(
    make_repo, mirrors, tmp_path, full_name
):
    # A real repository right outside the root: a traversal would find it.
    make_repo("../outside").commit({"f": "1"})
    repos = GitRepositories(mirrors)
    assert repos.path_for(full_name) is None
    assert not repos.available(full_name)
    with pytest.raises(RepositoryMissing):
        repos.commit_authors(full_name, ["abcd"])


def test_a_symlink_out_of_the_root_is_refused(make_repo, mirrors, tmp_path):
    outside = make_repo("../outside")
    outside.commit({"f": "1"})
    (mirrors / "acme").mkdir(parents=True)
    (mirrors / "acme" / "link").symlink_to(outside.path)
    repos = GitRepositories(mirrors)
    assert not repos.available("acme/link")


def test_a_missing_repository_is_a_named_error(mirrors):
    repos = GitRepositories(mirrors)
    with pytest.raises(RepositoryMissing) as caught:
        repos.codeowners("acme/gone", "a.py")
    assert "acme/gone" in str(caught.value)
    assert repos.calls == 0  # no git process for a repository that is not there


def test_without_any_setting_nothing_is_available():
    assert not GitRepositories().available("acme/payments-api")


# -- commit authors -------------------------------------------------------------------------------


def test_authors_of_many_commits_come_from_one_git_call(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    people = [(f"Dev {i}", f"dev{i}@corp.example") for i in range(12)]
    shas = [
        repo.commit({f"f{i}.txt": str(i)}, name=n, email=e, date=_at(i + 1))
        for i, (n, e) in enumerate(people)
    ]
    repos = GitRepositories(mirrors)
    authors = repos.commit_authors("acme/payments-api", shas)
    assert authors == {sha: Author(n, e) for sha, (n, e) in zip(shas, people)}
    assert repos.calls == 1


def test_unknown_short_and_malformed_shas(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    known = repo.commit({"a": "1"}, name=ADA[0], email=ADA[1])
    repos = GitRepositories(mirrors)
    asked = [known[:10], "0" * 40, "deadbeef", "--all", "HEAD", "abc", "zz" * 10, known.upper()]
    authors = repos.commit_authors("acme/payments-api", asked)
    assert authors == {known[:10]: Author(*ADA), known.upper(): Author(*ADA)}
    assert repos.calls == 1


def test_only_malformed_shas_start_no_git_process(make_repo, mirrors):
    make_repo("acme/payments-api").commit({"a": "1"})
    repos = GitRepositories(mirrors)
    assert repos.commit_authors("acme/payments-api", ["--output=/tmp/x", "HEAD~1"]) == {}
    assert repos.calls == 0


def test_mailmap_applies_to_commit_authors(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    old = repo.commit({"a": "1"}, name="ada", email="ada@old-laptop.local")
    repo.commit({".mailmap": f"{ADA[0]} <{ADA[1]}> <ada@old-laptop.local>\n"})
    repos = GitRepositories(mirrors)
    assert repos.commit_authors("acme/payments-api", [old]) == {old: Author(*ADA)}


# -- CODEOWNERS -----------------------------------------------------------------------------------

CODEOWNERS = """\
# default owner
*                       default@corp.example
*.py                    python@corp.example
/docs/                  docs@corp.example
apps/                   apps@corp.example
apps/billing/           billing@corp.example @acme/billing-team
/build/logs/*           logs@corp.example
secrets.yaml            ops@corp.example second@corp.example
"""


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        ("README.md", ["default@corp.example"]),
        ("tool.py", ["python@corp.example"]),
        ("src/deep/tool.py", ["python@corp.example"]),
        ("docs/guide.md", ["docs@corp.example"]),
        ("src/docs/guide.md", ["default@corp.example"]),  # /docs/ is anchored at the root
        ("apps/web/main.go", ["apps@corp.example"]),
        ("x/apps/web/main.go", ["apps@corp.example"]),  # apps/ (slash at end only) is not anchored
        ("apps/billing/main.py", ["billing@corp.example", "@acme/billing-team"]),  # last match wins
        ("build/logs/out.log", ["logs@corp.example"]),
        ("build/logs/2024/out.log", ["default@corp.example"]),  # /* matches one level only
        ("config/secrets.yaml", ["ops@corp.example", "second@corp.example"]),
        ("/tool.py", ["python@corp.example"]),  # a leading slash from the API is tolerated
    ],
)
def test_codeowners_precedence(make_repo, mirrors, path, owners):
    make_repo("acme/payments-api").commit({"CODEOWNERS": CODEOWNERS})
    assert GitRepositories(mirrors).codeowners("acme/payments-api", path) == owners


def test_codeowners_locations_follow_githubs_order(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    repo.commit({"docs/CODEOWNERS": "* docs-file@corp.example\n"})
    assert GitRepositories(mirrors).codeowners("acme/payments-api", "a.py") == [
        "docs-file@corp.example"
    ]
    repo.commit({"CODEOWNERS": "* root-file@corp.example\n"})
    assert GitRepositories(mirrors).codeowners("acme/payments-api", "a.py") == [
        "root-file@corp.example"
    ]
    repo.commit({".github/CODEOWNERS": "* github-file@corp.example\n"})
    assert GitRepositories(mirrors).codeowners("acme/payments-api", "a.py") == [
        "github-file@corp.example"
    ]


def test_codeowners_file_is_read_once_per_repository(make_repo, mirrors):
    make_repo("acme/payments-api").commit({".github/CODEOWNERS": CODEOWNERS})
    repos = GitRepositories(mirrors)
    answers = repos.codeowners_many("acme/payments-api", ["a.py", "docs/x", "z"])
    assert answers == {
        "a.py": ["python@corp.example"],
        "docs/x": ["docs@corp.example"],
        "z": ["default@corp.example"],
    }
    repos.codeowners("acme/payments-api", "b.py")
    assert repos.calls == 1


def test_no_codeowners_file_means_no_owners(make_repo, mirrors):
    make_repo("acme/payments-api").commit({"a.py": "x"})
    assert GitRepositories(mirrors).codeowners("acme/payments-api", "a.py") == []


def test_codeowners_is_read_from_a_bare_mirror(make_repo, mirrors, tmp_path):
    source = make_repo("../work/acme/api")
    source.commit({"CODEOWNERS": "*.py py@corp.example\n"})
    subprocess.run(
        ["git", "clone", "-q", "--mirror", str(source.path), str(mirrors / "acme/api.git")],
        check=True,
        env=source.env,
        capture_output=True,
    )
    repos = GitRepositories(mirrors)
    assert repos.available("acme/api")
    assert repos.codeowners("acme/api", "x.py") == ["py@corp.example"]


# -- last commits and recent committers ---------------------------------------------------------


def test_last_commit_per_path_in_one_call(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    repo.commit({"a.py": "1", "b.py": "1"}, name=ADA[0], email=ADA[1], date=_at(1))
    second = repo.commit({"a.py": "2"}, name=GRACE[0], email=GRACE[1], date=_at(2))
    third = repo.commit({"c/d.py": "1"}, name=LINUS[0], email=LINUS[1], date=_at(3))
    repos = GitRepositories(mirrors)
    last = repos.last_commits("acme/payments-api", ["a.py", "b.py", "c/d.py", "never.py"])
    assert repos.calls == 1
    assert last["a.py"].sha == second and last["a.py"].author == Author(*GRACE)
    assert last["a.py"].date == datetime(2024, 3, 2, 12, tzinfo=UTC)
    assert last["b.py"].author == Author(*ADA)
    assert last["c/d.py"].sha == third
    assert "never.py" not in last


def test_last_commit_only_by_given_authors_after_mailmap(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    repo.commit({".mailmap": f"<{ADA[1]}> <ADA@Laptop.local>\n"}, date=_at(1))
    by_ada = repo.commit({"a.py": "1"}, name="ada", email="ADA@Laptop.local", date=_at(2))
    repo.commit({"a.py": "2"}, name=GRACE[0], email=GRACE[1], date=_at(3))
    repos = GitRepositories(mirrors)
    last = repos.last_commits(
        "acme/payments-api", ["a.py"], authors={" Ada.Lovelace@CORP.example "}
    )
    assert last["a.py"].sha == by_ada
    assert last["a.py"].email == ADA[1]
    assert repos.last_commits("acme/payments-api", ["a.py"], authors=set()) == {}


def test_recent_committers_most_recent_first_and_unique(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    repo.commit({"a.py": "1"}, name=ADA[0], email=ADA[1], date=_at(1))
    repo.commit({"a.py": "2"}, name=GRACE[0], email=GRACE[1], date=_at(2))
    repo.commit({"other.py": "2"}, name=LINUS[0], email=LINUS[1], date=_at(3))
    repo.commit({"a.py": "3"}, name="ADA", email="Ada.Lovelace@corp.example", date=_at(4))
    committers = GitRepositories(mirrors).recent_committers("acme/payments-api", "a.py")
    assert [c.email.casefold() for c in committers] == [ADA[1], GRACE[1]]


# -- hostile and unusual paths ------------------------------------------------------------------

HOSTILE = [
    "--upload-pack=x",
    "-rf",
    ":(glob)*",
    "*",
    "<script>alert(1)</script>.js",
    "données/clé é.txt",
    "日本/設定.yaml",
    "with space/and'quote\".txt",
    "tab\there.txt",
]


def test_hostile_paths_are_data(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    repo.commit({"plain.txt": "x"}, name=LINUS[0], email=LINUS[1], date=_at(1))
    shas = {}
    for day, path in enumerate(HOSTILE, start=2):
        shas[path] = repo.commit({path: "secret-ish"}, name=ADA[0], email=ADA[1], date=_at(day))
    repo.commit({"CODEOWNERS": "*.js js@corp.example\n/données/ fr@corp.example\n"}, date=_at(20))
    repos = GitRepositories(mirrors)
    last = repos.last_commits("acme/payments-api", HOSTILE + ["plain.txt"])
    # `*` and `:(glob)*` are literal file names, not patterns: each maps to its own commit.
    assert {p: last[p].sha for p in HOSTILE} == shas
    assert last["plain.txt"].author == Author(*LINUS)
    for path in HOSTILE:
        assert [a.email for a in repos.recent_committers("acme/payments-api", path)] == [ADA[1]]
    assert repos.codeowners("acme/payments-api", "<script>alert(1)</script>.js") == [
        "js@corp.example"
    ]
    assert repos.codeowners("acme/payments-api", "données/clé é.txt") == ["fr@corp.example"]
    # Nothing ran as an option: no upload-pack file, no deletion.
    assert (repo.path / "plain.txt").exists()


def test_paths_outside_the_repository_are_skipped_not_fatal(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    repo.commit({"a.py": "1"})
    repos = GitRepositories(mirrors)
    last = repos.last_commits("acme/payments-api", ["../../etc/passwd", "a.py", "", "a\x00b"])
    assert set(last) == {"a.py"}
    assert repos.recent_committers("acme/payments-api", "../x") == []
    assert repos.codeowners("acme/payments-api", "../x") == []


# -- .mailmap ---------------------------------------------------------------------------------


def test_mailmap_resolves_many_addresses_in_one_call(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    repo.commit(
        {
            ".mailmap": (
                f"{ADA[0]} <{ADA[1]}> <ada@old-laptop.local>\n"
                f"<{GRACE[1]}> <GRACE@Personal.example>\n"
            )
        }
    )
    repos = GitRepositories(mirrors)
    answers = repos.mailmap(
        "acme/payments-api",
        [
            "ada@old-laptop.local",
            "grace@personal.example",
            "nobody@corp.example",
            "bad<x>@y",
            "-x@y",
        ],
    )
    assert answers == {
        "ada@old-laptop.local": ADA[1],
        "grace@personal.example": GRACE[1],  # mailmap matches e-mails case-insensitively
        "nobody@corp.example": "nobody@corp.example",
        "-x@y": "-x@y",
    }
    assert repos.calls == 1


# -- failures -------------------------------------------------------------------------------------


def test_git_failure_names_the_command_not_the_environment(make_repo, mirrors, monkeypatch):
    make_repo("acme/payments-api")  # no commit: HEAD does not exist yet
    monkeypatch.setenv("SOME_TOKEN", "test-token-full")
    repos = GitRepositories(mirrors)
    with pytest.raises(GitError) as caught:
        repos.recent_committers("acme/payments-api", "a.py")
    assert str(caught.value).startswith("git log failed in payments-api")
    assert "test-token-full" not in str(caught.value)


def test_git_environment_overrides_are_ignored(make_repo, mirrors, monkeypatch, tmp_path):
    make_repo("acme/payments-api").commit({"a.py": "1"}, name=ADA[0], email=ADA[1])
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))
    assert GitRepositories(mirrors).recent_committers("acme/payments-api", "a.py") == [Author(*ADA)]


def test_a_missing_git_binary_is_a_git_error(make_repo, mirrors):
    make_repo("acme/payments-api").commit({"a.py": "1"})
    repos = GitRepositories(mirrors, git=str(Path("/nonexistent/git")))
    with pytest.raises(GitError, match="could not start"):
        repos.recent_committers("acme/payments-api", "a.py")


def test_merge_commits_in_history_do_not_confuse_the_parser(make_repo, mirrors):
    repo = make_repo("acme/payments-api")
    repo.commit({"a.py": "1", "b.py": "1"}, date=_at(1))
    repo.git("checkout", "-q", "-b", "feature")
    on_branch = repo.commit({"a.py": "2"}, name=GRACE[0], email=GRACE[1], date=_at(2))
    repo.git("checkout", "-q", "main")
    on_main = repo.commit({"b.py": "2"}, name=LINUS[0], email=LINUS[1], date=_at(3))
    repo.git("merge", "-q", "--no-ff", "feature", "-m", "merge feature")
    last = GitRepositories(mirrors).last_commits("acme/payments-api", ["a.py", "b.py"])
    assert (last["a.py"].sha, last["b.py"].sha) == (on_branch, on_main)
