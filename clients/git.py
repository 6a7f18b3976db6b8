"""Local Git repositories of the sources GitGuardian scans: who wrote a commit, who owns a path.

Plain Python, no Prefect. `git` runs through `subprocess` with argument lists, never a shell.
Everything that comes from the API (source names, file paths, commit shas, e-mails) is data:
source names are checked against path traversal, shas must be hex, paths go after `--` with
literal pathspecs, so `--upload-pack=x` or `:(glob)*` is a file name and never an option.

Lookups are batched per repository: one `git log` answers all the shas of a repo, one
`git log --name-only` answers the last commit of many paths, one `git check-mailmap` many
addresses. `calls` counts the git processes started, for benchmarks and tests.
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from codeowners import CodeOwners

# GitHub looks for CODEOWNERS in this order and uses the first file it finds.
CODEOWNERS_LOCATIONS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")

_SHA = re.compile(r"^[0-9a-fA-F]{4,40}$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Shas per `git log` call: far under the OS argument limit, far over a page of occurrences.
_SHAS_PER_CALL = 5000
_PATHS_PER_CALL = 2000

# Config that must not change what we parse, whatever the user's global config says.
_CONFIG = (
    "-c", "core.quotepath=off",
    "-c", "log.showSignature=false",
    "-c", "log.follow=false",
    "-c", "log.mailmap=true",
    "-c", "core.fsmonitor=false",
)


class GitError(Exception):
    """A git command failed. The message names the command, never the environment."""


class RepositoryMissing(GitError):
    """No local repository for this source (not configured, or not cloned)."""

    def __init__(self, full_name: str):
        super().__init__(f"no local repository for source {full_name!r}")
        self.full_name = full_name


@dataclass(frozen=True)
class Author:
    name: str
    email: str  # as the commit (after .mailmap) says it; compare with normalise_email


@dataclass(frozen=True)
class Commit(Author):
    """The commit that last touched a path: its author (after .mailmap) and author date."""

    sha: str = ""
    date: datetime | None = None

    @property
    def author(self) -> Author:
        return Author(self.name, self.email)


def _normalise(email: str) -> str:
    # Same rule as tasks.decide.identity.normalise_email; clients do not import tasks.
    return (email or "").strip().casefold()


def safe_full_name(full_name: str) -> PurePosixPath | None:
    """The source name as a relative path, or None when it could escape the mirrors root."""
    if not full_name or "\x00" in full_name or "\\" in full_name:
        return None
    path = PurePosixPath(full_name)
    if path.is_absolute() or full_name.startswith("~"):
        return None
    parts = full_name.split("/")
    if any(part in ("", ".", "..") or part.startswith("-") for part in parts):
        return None
    return path


def repo_path(path: str) -> str | None:
    """A file path from the API as a repository-relative path, or None when it cannot be one.

    Leading '/' and './' are dropped; '..' segments, NUL and empty paths are refused (git would
    fail the whole batched command on a path outside the repository).
    """
    if not path or "\x00" in path:
        return None
    cleaned = path.lstrip("/")
    while cleaned.startswith("./"):
        cleaned = cleaned[2:].lstrip("/")
    parts = cleaned.split("/")
    if not cleaned or any(part in ("..",) for part in parts):
        return None
    return cleaned


class GitRepositories:
    """The local clones of the sources: `mirrors_root/<full_name>` or an explicit mapping.

    A mapping entry wins over the mirrors root. Repositories may be plain or bare clones.
    """

    def __init__(
        self,
        mirrors_root: Path | None = None,
        mapping: Mapping[str, Path] | None = None,
        *,
        timeout: float = 60.0,
        git: str = "git",
    ):
        self.mirrors_root = Path(mirrors_root) if mirrors_root else None
        self.mapping = {name: Path(p) for name, p in (mapping or {}).items()}
        self.timeout = timeout
        self.git = git
        self.calls = 0  # git processes started
        self.calls_by_command: Counter[str] = Counter()
        self._owners: dict[Path, CodeOwners | None] = {}
        self._lock = threading.Lock()
        self._env = _git_environment()

    # -- where the repositories are --------------------------------------------------------------

    def path_for(self, full_name: str) -> Path | None:
        if full_name in self.mapping:
            return self.mapping[full_name]
        relative = safe_full_name(full_name)
        if relative is None or self.mirrors_root is None:
            return None
        root = self.mirrors_root.resolve()
        for candidate in (root / relative, root / f"{relative}.git"):
            if not (candidate.exists() or candidate.is_symlink()):
                continue
            # A symlink inside the root may still point outside it: the resolved path decides.
            resolved = candidate.resolve()
            return resolved if root in resolved.parents else None
        return root / relative  # not cloned (yet): `available` says no

    def available(self, full_name: str) -> bool:
        path = self.path_for(full_name)
        return path is not None and path.is_dir() and (
            (path / ".git").exists() or (path / "HEAD").is_file()
        )

    def _repo(self, full_name: str) -> Path:
        if not self.available(full_name):
            raise RepositoryMissing(full_name)
        path = self.path_for(full_name)
        assert path is not None
        return path

    # -- running git ------------------------------------------------------------------------------

    def _run(self, repo: Path, args: list[str], *, input_text: str | None = None) -> str:
        command = [self.git, "--literal-pathspecs", *_CONFIG, "-C", str(repo), *args]
        with self._lock:
            self.calls += 1
            self.calls_by_command[args[0]] += 1
        try:
            completed = subprocess.run(
                command,
                input=input_text.encode() if input_text is not None else None,
                capture_output=True,
                env=self._env,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(
                f"git {args[0]} timed out after {self.timeout:g}s in {repo.name}"
            ) from exc
        except OSError as exc:
            raise GitError(f"git {args[0]} could not start: {type(exc).__name__}") from exc
        if completed.returncode != 0:
            first_line = completed.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            message = first_line[0][:200] if first_line else f"exit status {completed.returncode}"
            raise GitError(f"git {args[0]} failed in {repo.name}: {message}")
        return completed.stdout.decode("utf-8", "replace")

    # -- commits ---------------------------------------------------------------------------------

    def commit_authors(self, full_name: str, shas: Iterable[str]) -> dict[str, Author]:
        """Author (after .mailmap) of each commit, keyed by the sha as given.

        One `git log --no-walk` for all shas; unknown, ambiguous or malformed shas are absent.
        """
        wanted = sorted({s for s in shas if isinstance(s, str) and _SHA.match(s)})
        if not wanted:
            return {}
        repo = self._repo(full_name)
        found: dict[str, Author] = {}
        for start in range(0, len(wanted), _SHAS_PER_CALL):
            batch = wanted[start : start + _SHAS_PER_CALL]
            out = self._run(
                repo,
                [
                    "log",
                    "--no-walk=unsorted",
                    "--ignore-missing",
                    "-z",
                    "--format=%H%x00%aN%x00%aE",
                    *batch,
                    "--",
                ],
            )
            tokens = out.split("\x00")
            by_full: dict[str, Author] = {}
            for i in range(0, len(tokens) - 2, 3):
                full, name, email = tokens[i].strip(), tokens[i + 1], tokens[i + 2]
                if _FULL_SHA.match(full):
                    by_full[full] = Author(name, email)
            for sha in batch:
                prefix = sha.lower()
                matches = [full for full in by_full if full.startswith(prefix)]
                if len(matches) == 1:
                    found[sha] = by_full[matches[0]]
        return found

    def last_commits(
        self,
        full_name: str,
        paths: Iterable[str],
        *,
        authors: set[str] | None = None,
    ) -> dict[str, Commit]:
        """The most recent commit touching each path, optionally only by the given authors.

        `authors` are e-mails compared normalised, after .mailmap. One `git log --name-only`
        over all paths; a path no (matching) commit touched is absent.
        """
        wanted = {p: repo_path(p) for p in paths}
        cleaned = sorted({c for c in wanted.values() if c})
        if not cleaned:
            return {}
        allowed = {_normalise(a) for a in authors} if authors is not None else None
        repo = self._repo(full_name)
        latest: dict[str, Commit] = {}
        for start in range(0, len(cleaned), _PATHS_PER_CALL):
            batch = cleaned[start : start + _PATHS_PER_CALL]
            pending = set(batch)
            for commit, names in self._log_with_names(repo, batch):
                if allowed is not None and _normalise(commit.email) not in allowed:
                    continue
                for requested in _requested_by(names, pending):
                    latest[requested] = commit
                    pending.discard(requested)
                if not pending:
                    break
        return {original: latest[c] for original, c in wanted.items() if c and c in latest}

    def recent_committers(self, full_name: str, path: str, *, limit: int = 200) -> list[Author]:
        """Authors (after .mailmap) of the commits touching a path, most recent first, unique."""
        cleaned = repo_path(path)
        if cleaned is None:
            return []
        repo = self._repo(full_name)
        out = self._run(
            repo,
            [
                "log",
                f"--max-count={int(limit)}",
                "-z",
                "--format=%aN%x00%aE",
                "--",
                cleaned,
            ],
        )
        tokens = out.split("\x00")
        seen: set[str] = set()
        committers: list[Author] = []
        for i in range(0, len(tokens) - 1, 2):
            name, email = tokens[i].lstrip("\n"), tokens[i + 1]
            key = _normalise(email)
            if key and key not in seen:
                seen.add(key)
                committers.append(Author(name, email))
        return committers

    def _log_with_names(self, repo: Path, paths: list[str]) -> list[tuple[Commit, list[str]]]:
        """`git log --name-only -z` parsed into (commit, changed paths among `paths`), newest first.

        With -z each commit prints `\\0<sha>\\0<name>\\0<email>\\0<date>\\0` then `\\n` and the
        NUL-terminated names. An empty token only occurs at a commit's start (a path is never
        empty), which is how headers are told from names.
        """
        out = self._run(
            repo,
            [
                "log",
                "-z",
                "--name-only",
                "--format=%x00%H%x00%aN%x00%aE%x00%aI",
                "--",
                *paths,
            ],
        )
        tokens = out.split("\x00")
        commits: list[tuple[Commit, list[str]]] = []
        i = 0
        while i < len(tokens):
            if tokens[i] != "":
                i += 1  # not expected: skip rather than misread a name as a header
                continue
            while i < len(tokens) and tokens[i] == "":
                i += 1
            if i + 4 > len(tokens):
                break
            sha, name, email, date = tokens[i : i + 4]
            i += 4
            names: list[str] = []
            while i < len(tokens) and tokens[i] != "":
                names.append(
                    tokens[i][1:] if not names and tokens[i].startswith("\n") else tokens[i]
                )
                i += 1
            commits.append((Commit(name, email, sha=sha, date=_parse_date(date)), names))
        return commits

    # -- CODEOWNERS -----------------------------------------------------------------------------

    def codeowners(self, full_name: str, path: str) -> list[str]:
        """Owners of a path as written in CODEOWNERS (e-mails or @handles), GitHub's rules."""
        return self.codeowners_many(full_name, [path]).get(path, [])

    def codeowners_many(self, full_name: str, paths: Iterable[str]) -> dict[str, list[str]]:
        rules = self._codeowners_file(full_name)
        answers: dict[str, list[str]] = {}
        for path in paths:
            cleaned = repo_path(path)
            if rules is None or cleaned is None:
                answers[path] = []
            else:
                answers[path] = [owner for _kind, owner in rules.of(cleaned)]
        return answers

    def _codeowners_file(self, full_name: str) -> CodeOwners | None:
        repo = self._repo(full_name)
        with self._lock:
            if repo in self._owners:
                return self._owners[repo]
        text = self._first_blob(repo, CODEOWNERS_LOCATIONS)
        rules = CodeOwners(text) if text is not None else None
        with self._lock:
            self._owners[repo] = rules
        return rules

    def _first_blob(self, repo: Path, locations: Iterable[str]) -> str | None:
        """The first of these files that exists at HEAD, read in one `git cat-file --batch`.

        Reading from HEAD (not the work tree) works for bare mirrors too.
        """
        specs = [f"HEAD:{location}" for location in locations]
        out = self._run(repo, ["cat-file", "--batch"], input_text="".join(s + "\n" for s in specs))
        data = out.encode("utf-8")
        position = 0
        while position < len(data):
            end = data.index(b"\n", position)
            header = data[position:end].decode()
            position = end + 1
            if header.endswith(" missing") or header.endswith(" ambiguous"):
                continue
            _sha, kind, size = header.rsplit(" ", 2)
            body = data[position : position + int(size)]
            position += int(size) + 1  # the object is followed by a newline
            if kind == "blob":
                return body.decode("utf-8", "replace")
        return None

    # -- .mailmap --------------------------------------------------------------------------------

    def mailmap(self, full_name: str, emails: Iterable[str]) -> dict[str, str]:
        """Canonical e-mail of each address according to the repository's .mailmap.

        Addresses the mailmap does not know map to themselves. One `git check-mailmap` call.
        Addresses that cannot be written as `<address>` (angle brackets, newlines) are absent.
        """
        wanted = sorted({e for e in emails if e and not re.search(r"[<>\x00\r\n]", e)})
        if not wanted:
            return {}
        repo = self._repo(full_name)
        # Each argument starts with '<', so none can be read as an option.
        out = self._run(repo, ["check-mailmap", *(f"<{e}>" for e in wanted)])
        lines = out.splitlines()
        answers: dict[str, str] = {}
        for email, line in zip(wanted, lines):
            match = re.search(r"<([^<>]*)>\s*$", line)
            answers[email] = match.group(1) if match else email
        return answers


def _requested_by(names: list[str], pending: set[str]) -> list[str]:
    """Which requested paths a commit's changed names answer (a file, or a folder above it)."""
    hits = []
    for requested in pending:
        prefix = requested.rstrip("/") + "/"
        if any(name == requested or name.startswith(prefix) for name in names):
            hits.append(requested)
    return hits


def _parse_date(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        return None


def _git_environment() -> dict[str, str]:
    """The caller's environment without GIT_* overrides (GIT_DIR would redirect every call)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",  # read-only callers never take the index lock
            "LC_ALL": "C",
        }
    )
    return env
