"""Write a generated workspace to disk: the directory, the repositories and the ground truth.

    out/directory.ldif      base entries then people, for slapadd or ldapadd
    out/directory.json      the same entries for ldap3's offline mock (`entries_from_json`)
    out/repos/<full_name>/  real git repositories, whose shas are the occurrences' shas
    out/ground_truth.json   what each playbook should do (see sandbox/ground_truth.py)
    out/workspace.json      members, sources, incidents and occurrences as the API serves them

Same workspace, same bytes (git internals aside): nothing here reads the clock or randomness.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import zlib
from datetime import timedelta
from pathlib import Path

from sandbox.vocabulary import BASE_DN, COMMITTER_EMAIL, COMMITTER_NAME, LEAVERS_OU, PEOPLE_OU
from sandbox.workspace import DirectoryPerson, Repository, Workspace

PERSON_CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson", "ggPerson"]
ACCOUNT_NORMAL = 512
# AD's ACCOUNTDISABLE (2) on a normal account, and with DONT_EXPIRE_PASSWORD (65536) too
ACCOUNT_DISABLED = (514, 66050)


def export(workspace: Workspace, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = directory_entries(workspace)
    (out_dir / "directory.ldif").write_text(to_ldif(entries), encoding="utf-8")
    # ensure_ascii: ldap3 opens the file with the locale's encoding
    (out_dir / "directory.json").write_text(
        json.dumps({"entries": [{"dn": dn, "raw": raw} for dn, raw in entries]}, indent=1),
        encoding="ascii")
    (out_dir / "ground_truth.json").write_text(
        json.dumps(workspace.ground_truth, indent=1, ensure_ascii=False), encoding="utf-8")
    api = {"seed": workspace.seed, "now": workspace.now.isoformat(),
           "workspace_id": workspace.workspace_id, "members": workspace.members,
           "sources": workspace.sources, "incidents": workspace.incidents,
           "occurrences": workspace.occurrences}
    (out_dir / "workspace.json").write_text(json.dumps(api, ensure_ascii=False),
                                            encoding="utf-8")
    repos_root = out_dir / "repos"
    for repository in workspace.repositories:
        write_repository(repository, repos_root / repository.full_name)


# --- directory ---------------------------------------------------------------------------

def environment(out_dir: Path, *, url: str | None = None, key: str | None = None,
                ledger: Path | None = None) -> dict[str, str]:
    """The variables that point every adapter at an export written by `export` (the directory's
    offline JSON, the git mirrors) and, given `url` and `key`, at a sandbox's API; given `ledger`,
    a SQLite ledger there. What an operator sets (README "Configuration"); the API client's own
    rate limit is off, as the sandbox has none unless asked. LDAP_URL is not among them: the
    directory is the export's JSON."""
    out_dir = Path(out_dir)
    env = {
        "GITGUARDIAN_REQUESTS_PER_MINUTE": "0",
        "DIRECTORY_JSON": str(out_dir / "directory.json"),
        "LDAP_BASE_DN": BASE_DN,
        "LDAP_LEAVERS_OU": LEAVERS_OU,
        "GIT_MIRRORS_ROOT": str(out_dir / "repos"),
    }
    if url is not None:
        env["GITGUARDIAN_API_URL"] = url
    if key is not None:
        env["GITGUARDIAN_API_KEY"] = key
    if ledger is not None:
        env["LEDGER_URL"] = f"sqlite:///{ledger}"
    return env


def _stable_number(text: str) -> int:
    return zlib.crc32(text.encode())  # the same on every run, unlike hash()


def person_attributes(person: DirectoryPerson, workspace: Workspace) -> dict[str, list[str]]:
    markers = set(person.leaver_markers)
    attributes: dict[str, list[str]] = {
        "objectClass": list(PERSON_CLASSES),
        "uid": [person.uid],
        "cn": [person.display_name],
        "sn": [person.surname],
        "givenName": [person.given_name],
        "displayName": [person.display_name],
        "mail": [person.email],
    }
    if person.aliases:
        attributes["mailAlternateAddress"] = list(person.aliases)
        attributes["proxyAddresses"] = [f"SMTP:{person.email}"] + [
            f"smtp:{alias}" for alias in person.aliases]
    if person.manager_dn:
        attributes["manager"] = [person.manager_dn]
    attributes["employeeType"] = ["former" if "employee_type" in markers else "employee"]
    number = _stable_number(person.uid)
    disabled = ACCOUNT_DISABLED[number % 2]
    attributes["userAccountControl"] = [str(disabled if "disabled_bit" in markers
                                            else ACCOUNT_NORMAL)]
    if "locked" in markers:
        locked_at = workspace.now - timedelta(days=1 + number % 300)
        attributes["pwdAccountLockedTime"] = [locked_at.strftime("%Y%m%d%H%M%SZ")]
    return attributes


def directory_entries(workspace: Workspace) -> list[tuple[str, dict[str, list[str]]]]:
    """Base entry, the two OUs, then people in the generator's order."""
    entries: list[tuple[str, dict[str, list[str]]]] = [
        (BASE_DN, {"objectClass": ["top", "dcObject", "organization"], "dc": ["corp"],
                   "o": ["Corp Example"]}),
        (PEOPLE_OU, {"objectClass": ["top", "organizationalUnit"], "ou": ["people"]}),
        (LEAVERS_OU, {"objectClass": ["top", "organizationalUnit"], "ou": ["leavers"]}),
    ]
    for person in workspace.people:
        entries.append((person.dn, person_attributes(person, workspace)))
    return entries


def _needs_base64(value: str) -> bool:
    """RFC 2849: a SAFE-STRING is ASCII without NUL/CR/LF, not starting with space, ':', '<'."""
    if not value:
        return False
    if value[0] in " :<" or value[-1] == " ":
        return True
    return any(ord(ch) > 126 or ch in "\0\r\n" for ch in value)


def ldif_line(name: str, value: str) -> str:
    if _needs_base64(value):
        return f"{name}:: {base64.b64encode(value.encode()).decode()}"
    return f"{name}: {value}"


def to_ldif(entries: list[tuple[str, dict[str, list[str]]]]) -> str:
    blocks = ["version: 1"]
    for dn, attributes in entries:
        lines = [ldif_line("dn", dn)]
        for name, values in attributes.items():
            lines.extend(ldif_line(name, value) for value in values)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


# --- repositories ------------------------------------------------------------------------

def _git_env() -> dict[str, str]:
    """No user or system git configuration may change what is written."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_COMMITTER_NAME=COMMITTER_NAME, GIT_COMMITTER_EMAIL=COMMITTER_EMAIL,
               GIT_AUTHOR_NAME=COMMITTER_NAME, GIT_AUTHOR_EMAIL=COMMITTER_EMAIL)
    return env


def fast_import_stream(repository: Repository) -> bytes:
    """The repository's history as a `git fast-import` stream, one commit per Commit."""
    parts: list[bytes] = []
    for commit in repository.commits:
        stamp = f"{int(commit.date.timestamp())} +0000".encode()
        message = commit.message.encode()
        parts.append(b"commit refs/heads/main\n")
        parts.append(b"author " + commit.author_name.encode() + b" <"
                     + commit.author_email.encode() + b"> " + stamp + b"\n")
        parts.append(f"committer {COMMITTER_NAME} <{COMMITTER_EMAIL}> ".encode() + stamp + b"\n")
        parts.append(b"data %d\n" % len(message) + message + b"\n")
        for path, content in commit.files.items():
            data = content.encode()
            # an unquoted path runs to the end of the line; only a leading quote needs quoting
            parts.append(b"M 100644 inline " + path.encode() + b"\n")
            parts.append(b"data %d\n" % len(data) + data + b"\n")
    parts.append(b"done\n")
    return b"".join(parts)


def write_repository(repository: Repository, path: Path) -> None:
    """A plain (non-bare) repository with the history checked out on `main`."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    env = _git_env()
    run = {"cwd": path, "env": env, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", "."], **run)
    subprocess.run(["git", "fast-import", "--quiet", "--done"],
                   input=fast_import_stream(repository), **run)
    subprocess.run(["git", "reset", "--quiet", "--hard", "main"], **run)
