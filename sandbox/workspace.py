"""The generated world the sandbox serves: a GitGuardian workspace, a directory and repositories.

Plain data, produced by `sandbox.generator.generate()` and loaded by the server's store.
Every API object is a dict in the exact JSON shape GitGuardian returns (see
../shared/contract/recorded), so the server can answer with it as it is.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Token:
    id: str  # UUID text, as the API's token ids
    name: str
    scopes: list[str]
    member_id: int
    type: str = "personal_access_token"
    status: str = "active"  # or "revoked" / "expired": such a key answers 401
    expire_at: datetime | None = None  # when the key expires, as its description says
    # the API key value; invented at run time, never written to exports nor shown in reprs
    secret: str = field(default="", repr=False)


@dataclass
class DirectoryPerson:
    uid: str
    dn: str
    email: str
    given_name: str
    surname: str
    display_name: str
    aliases: list[str] = field(default_factory=list)
    manager_dn: str | None = None
    departed: bool = False
    # how the departure is marked: any of "leavers_ou", "employee_type", "disabled_bit", "locked"
    leaver_markers: list[str] = field(default_factory=list)


@dataclass
class Commit:
    sha: str
    author_name: str
    author_email: str
    date: datetime
    files: dict[str, str]  # path -> content
    message: str = ""


@dataclass
class Repository:
    full_name: str  # "acme/payments-api": the source's full_name
    commits: list[Commit] = field(default_factory=list)  # oldest first
    codeowners: str = ""  # CODEOWNERS text (owners as e-mails)
    mailmap: str = ""  # .mailmap text
    codeowners_path: str = "CODEOWNERS"  # or ".github/CODEOWNERS"


@dataclass
class Workspace:
    seed: int
    now: datetime  # the generation's reference time (aware UTC): dates are relative to it
    workspace_id: int
    members: list[dict[str, Any]]
    tokens: list[Token]
    sources: list[dict[str, Any]]
    incidents: list[dict[str, Any]]  # API shape, "occurrences": None
    occurrences: list[dict[str, Any]]  # API shape, each with "incident_id" and embedded "source"
    notes: list[dict[str, Any]] = field(default_factory=list)
    audit_logs: list[dict[str, Any]] = field(default_factory=list)
    people: list[DirectoryPerson] = field(default_factory=list)
    repositories: list[Repository] = field(default_factory=list)
    # what each playbook should do under its default policy: see sandbox/ground_truth.py
    ground_truth: dict[str, Any] = field(default_factory=dict)
