"""Sources and their git repositories: commits hashed exactly as git hashes them (blob, tree
and commit objects), so the server cites shas before any repository exists on disk, and each
repository's CODEOWNERS and .mailmap.
"""
from __future__ import annotations

import bisect
import hashlib
from datetime import datetime, timedelta
from typing import Any

from sandbox.people import (
    _World,
)
from sandbox.vocabulary import (
    COMMITTER_EMAIL,
    COMMITTER_NAME,
    REPO_NAMES,
    _iso,
)


def _git_sha(kind: bytes, payload: bytes) -> bytes:
    return hashlib.sha1(kind + b" " + str(len(payload)).encode() + b"\0" + payload).digest()


class _Tree:
    """A directory of the repository snapshot whose tree hash is recomputed only when dirty."""

    __slots__ = ("keys", "serialized", "children", "pending", "sha", "dirty")

    def __init__(self) -> None:
        # git orders tree entries by name, with a directory compared as "name/"
        self.keys: list[bytes] = []  # sort keys, sorted
        self.serialized: list[bytes] = []  # the entries, in the same order
        self.children: dict[bytes, _Tree] = {}
        self.pending: list[bytes] = []  # children changed since the last hash
        self.sha = b""
        self.dirty = False

    def _set(self, key: bytes, entry: bytes) -> None:
        keys = self.keys
        slot = bisect.bisect_left(keys, key)
        if slot < len(keys) and keys[slot] == key:
            self.serialized[slot] = entry
        else:
            keys.insert(slot, key)
            self.serialized.insert(slot, entry)

    def put(self, parts: list[bytes], blob_sha: bytes) -> None:
        tree = self
        for name in parts[:-1]:
            tree.dirty = True
            child = tree.children.get(name)
            if child is None:
                child = tree.children[name] = _Tree()
            if not child.dirty:
                tree.pending.append(name)
            tree = child
        tree.dirty = True
        name = parts[-1]
        tree._set(name, b"100644 " + name + b"\0" + blob_sha)

    def hash(self) -> bytes:
        if self.dirty:
            for name in self.pending:
                self._set(name + b"/", b"40000 " + name + b"\0" + self.children[name].hash())
            self.pending.clear()
            self.sha = _git_sha(b"tree", b"".join(self.serialized))
            self.dirty = False
        return self.sha


class _RepoHistory:
    """Builds commits in order and knows each one's sha as git will compute it."""

    def __init__(self) -> None:
        self.root = _Tree()
        self.parent: str | None = None

    def commit(self, author_name: str, author_email: str, when: datetime,
               files: dict[str, str], message: str) -> str:
        for path, content in files.items():
            data = content.encode()
            self.root.put(path.encode().split(b"/"), _git_sha(b"blob", data))
        stamp = f"{int(when.timestamp())} +0000"
        lines = [f"tree {self.root.hash().hex()}"]
        if self.parent:
            lines.append(f"parent {self.parent}")
        lines.append(f"author {author_name} <{author_email}> {stamp}")
        lines.append(f"committer {COMMITTER_NAME} <{COMMITTER_EMAIL}> {stamp}")
        text = "\n".join(lines) + "\n\n" + message
        self.parent = _git_sha(b"commit", text.encode()).hex()
        return self.parent


def _build_sources(world: _World, count: int) -> list[dict[str, Any]]:
    rng = world.rng
    sources = []
    source_id = 5000 + rng.randint(0, 999)
    for index in range(count):
        name = REPO_NAMES[index % len(REPO_NAMES)]
        if index >= len(REPO_NAMES):
            name = f"{name}-{index // len(REPO_NAMES) + 1}"
        github = rng.random() < 0.75
        owner = "acme" if github else "acme-platform"
        full_name = f"{owner}/{name}"
        url = f"https://{'github.com' if github else 'gitlab.com'}/{full_name}"
        public = rng.random() < 0.15
        source_id += rng.randint(1, 30)
        scan_date = world.now - timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86399))
        sources.append({
            "id": source_id, "type": "github" if github else "gitlab", "full_name": full_name,
            "health": "safe", "source_criticality": rng.choice(["critical", "high", "medium",
                                                                "low", "unknown"]),
            "default_branch": "main", "default_branch_head": None,
            "open_incidents_count": 0, "closed_incidents_count": 0,
            "last_scan": {"date": _iso(scan_date), "status": "finished", "failing_reason": "",
                          "commits_scanned": rng.randint(50, 20000),
                          "duration": f"{rng.uniform(0.5, 300):.6f}", "branches_scanned":
                          rng.randint(1, 40), "progress": 100},
            "monitored": True, "monitoring_status": "monitored",
            "visibility": "public" if public else "private",
            "external_id": str(rng.randint(10_000_000, 999_999_999)),
            "secret_incidents_breakdown": None,  # filled once incidents exist
            "url": url, "provider_metadata": {"archived": rng.random() < 0.05},
            "deleted": False,
        })
    return sources


def _codeowners(world: _World) -> str:
    """Owners as e-mails; later rules override earlier ones (last match wins)."""
    rng = world.rng
    owners = [p.email for p in world.people if "<" not in p.display_name]
    lines = ["# Code owners: the last matching pattern wins"]
    if rng.random() < 0.55:
        lines.append(f"* {rng.choice(owners)}")
    rules = [("/src/", 2), ("*.go", 1), ("/deploy/", 1), ("/config/", 2), ("tests/", 1),
             ("/internal/", 1), ("*.py", 1), ("/app/", 1), ("/web/", 2), ("/terraform/", 1),
             ("/legacy/", 1)]
    for pattern, n_owners in rng.sample(rules, rng.randint(2, 6)):
        chosen = [rng.choice(owners) for _ in range(n_owners)]
        if rng.random() < 0.15:
            chosen.insert(0, "security-team@corp.example")  # a list, not a person
        lines.append(f"{pattern} {' '.join(dict.fromkeys(chosen))}")
    if rng.random() < 0.3:
        lines.append(f"/src/payments/ {rng.choice(owners)}")
    return "\n".join(lines) + "\n"


def _mailmap(world: _World) -> str:
    lines = ["# canonical identities for old commit e-mails"]
    for index, old in world.old_emails.items():
        person = world.people[index]
        if "<" in person.display_name:
            continue
        lines.append(f"{person.display_name} <{person.email}> <{old}>")
    return "\n".join(lines) + "\n"
