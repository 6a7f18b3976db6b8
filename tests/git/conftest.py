"""Real Git repositories built in a temp dir, with chosen authors and dates."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


class RepoBuilder:
    """Writes files and commits them as a given author at a given date."""

    def __init__(self, path: Path, home: Path):
        self.path = path
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("GIT_")
        } | {
            "HOME": str(home),  # no developer's global config in the tests
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_COMMITTER_NAME": "Committer",
            "GIT_COMMITTER_EMAIL": "committer@corp.example",
            "GIT_AUTHOR_NAME": "Merger",  # merges made with `git()` need an author too
            "GIT_AUTHOR_EMAIL": "merger@corp.example",
        }
        path.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.path), *args],
            env=self.env, check=True, capture_output=True, text=True,
        ).stdout

    def commit(
        self,
        files: dict[str, str | None],
        *,
        name: str = "Ada Lovelace",
        email: str = "ada.lovelace@corp.example",
        date: str = "2024-01-01T10:00:00+00:00",
        message: str = "change",
    ) -> str:
        """Write (or delete, with None) the files, commit them all, return the full sha."""
        for relative, content in files.items():
            target = self.path / relative
            if content is None:
                self.git("rm", "-q", "--", relative)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            self.git("add", "--", relative)
        env = self.env | {
            "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
            "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date,
        }
        subprocess.run(
            ["git", "-C", str(self.path), "commit", "-q", "--allow-empty", "-m", message],
            env=env, check=True, capture_output=True,
        )
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def mirrors(tmp_path: Path) -> Path:
    return tmp_path / "mirrors"


@pytest.fixture
def make_repo(tmp_path: Path, mirrors: Path):
    """`make_repo("acme/payments-api")` -> a RepoBuilder at mirrors/acme/payments-api."""
    home = tmp_path / "home"
    home.mkdir()

    def make(full_name: str) -> RepoBuilder:
        return RepoBuilder(mirrors / full_name, home)

    return make
