"""A seeded GitGuardian workspace: members, sources, incidents, occurrences, a directory of
people and the git history every occurrence cites.

Everything derives from `random.Random(seed)` and `now` (default: the start of the current UTC
day, so exports on one day are identical). Commit shas are computed here exactly as git does
(blob, tree and commit objects hashed with SHA-1), so the server can serve them before any
repository exists on disk; `sandbox.export` later writes the same history with `git
fast-import` and gets the same shas.
"""
from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clients.models import CLOSED_STATUSES, OPEN_STATUSES
from sandbox.ground_truth import compute_ground_truth
from sandbox.workspace import Commit, DirectoryPerson, Repository, Token, Workspace

BASE_DN = "dc=corp,dc=example"
PEOPLE_OU = f"ou=people,{BASE_DN}"
LEAVERS_OU = f"ou=leavers,{BASE_DN}"
EMAIL_DOMAIN = "corp.example"
LEAVER_MARKERS = ("leavers_ou", "employee_type", "disabled_bit", "locked")
# The one committer of every exported commit: authors vary, the committer never does.
COMMITTER_NAME = "Sandbox Generator"
COMMITTER_EMAIL = "sandbox-generator@corp.example"

ALL_SCOPES = [
    "scan", "incidents:read", "incidents:write", "incidents:share", "members:read",
    "members:write", "audit_logs:read", "teams:read", "teams:write", "api_tokens:read",
    "sources:read", "sources:write",
]
READ_SCOPES = ["incidents:read", "members:read", "audit_logs:read", "teams:read",
               "api_tokens:read", "sources:read"]

DETECTORS: list[dict[str, str]] = [
    {"name": n, "display_name": d, "nature": "specific", "family": f, "category": c,
     "detector_group_name": g, "detector_group_display_name": d}
    for n, d, f, c, g in [
        ("aws_iam", "AWS IAM Keys", "credentials", "cloud_provider", "aws_iam"),
        ("private_key_rsa", "RSA Private Key", "cryptographic_key", "private_key",
         "private_key_rsa"),
        ("private_key_openssh", "OpenSSH Private Key", "cryptographic_key", "private_key",
         "private_key_openssh"),
        ("private_key_dsa", "DSA Private Key", "cryptographic_key", "private_key",
         "private_key_dsa"),
        ("slackusertoken", "Slack User Token", "token", "messaging_system", "slack_user_token"),
        ("slack_bot_token", "Slack Bot Token", "token", "messaging_system", "slack_bot_token"),
        ("github_access_token", "GitHub Access Token", "token", "version_control_platform",
         "github_access_token"),
        ("gitlab_personal_access_token", "GitLab Personal Access Token", "token",
         "version_control_platform", "gitlab_personal_access_token"),
        ("salesforce_oauth2", "Salesforce Oauth2 Keys", "credentials", "crm",
         "salesforce_oauth2_keys"),
        ("newrelic_apm_license_key", "New Relic APM License Key", "token", "monitoring",
         "newrelic_apm_license_key"),
        ("newrelic_insights_query_key", "New Relic Insights Query Key", "token", "monitoring",
         "newrelic_insights_query_key"),
        ("mailgun_basic_auth", "Mailgun Primary Key", "token", "messaging_system",
         "mailgun_primary_key"),
        ("stripe_api_key", "Stripe Keys", "token", "payment_system", "stripe_keys"),
        ("postgres_assignment", "PostgreSQL Credentials", "credentials", "data_storage",
         "postgres_credentials"),
        ("generic_password", "Generic Password", "credentials", "other", "generic_password"),
        ("generic_high_entropy_secret", "Generic High Entropy Secret", "token", "other",
         "generic_high_entropy_secret"),
    ]
]
_DETECTOR_WEIGHTS = [10, 6, 3, 1, 5, 3, 7, 3, 2, 2, 1, 2, 4, 5, 14, 18]

FIRST_NAMES = [
    "Alice", "Bruno", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kenji",
    "Laura", "Mehdi", "Nina", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tara", "Ugo",
    "Vera", "Wei", "Xavier", "Yasmin", "Zoe", "Zoë", "José", "Łukasz", "Søren", "Anaïs",
    "Björn", "Çağla", "Dmitri", "Élodie", "Ngọc", "Siobhán", "Mateus", "Aiko", "Olumide",
]
LAST_NAMES = [
    "Martin", "Bernard", "Dubois", "Smith", "Johnson", "Garcia", "Müller", "Schmidt", "Rossi",
    "Kowalski", "Nguyễn", "Tanaka", "Okafor", "Silva", "Ångström", "O'Brien", "Da Costa",
    "Lefèvre", "Novak", "Fischer", "Patel", "Khan", "Kim", "Ivanova", "Haddad", "Moreau",
    "Jensen", "Costa", "Weber", "Yilmaz", "Brown", "Lopez", "Santos", "Wong", "Cohen",
]
REPO_NAMES = [
    "payments-api", "billing-service", "web-frontend", "mobile-app", "infra-terraform",
    "data-pipeline", "auth-service", "notifications", "search-indexer", "admin-console",
    "ml-platform", "reporting", "gateway", "inventory", "checkout", "user-profile", "ledger",
    "ci-templates", "helm-charts", "docs-site", "analytics-etl", "fraud-detection",
    "partner-sync", "legacy-monolith", "sdk-python", "sdk-go", "sdk-js", "mail-relay",
    "feature-flags", "scheduler", "kafka-connectors", "pricing-engine", "crm-bridge",
    "support-tools", "status-page", "backoffice", "warehouse", "media-service", "geo-service",
    "chat-bot", "load-tests", "security-scanners", "vault-config", "observability",
    "edge-proxy", "identity-broker", "tax-service", "shipping", "returns", "loyalty",
    "recommendations", "catalog", "cms", "onboarding", "compliance", "audit-trail",
    "rate-limiter", "secrets-rotation", "design-system", "playground",
]
MODULES = ["core", "billing", "auth", "users", "orders", "api", "db", "cache", "queue", "mailer",
           "reports", "admin", "search", "payments", "sync", "export"]
FILE_STEMS = ["config", "settings", "client", "handler", "service", "utils", "models", "db",
              "routes", "worker", "secrets", "credentials", "connector", "main", "helpers"]
ENVS = ["dev", "staging", "prod", "qa", "local"]

# Paths a reviewer would call test code under the playbook's default globs.
TEST_TEMPLATES = [
    "tests/{m}/test_{s}.py", "test/{s}.py", "src/{m}/__tests__/{s}.test.js",
    "spec/{m}/{s}_spec.rb", "internal/{m}/testdata/{s}.json", "tests/fixtures/{s}.yaml",
    "pkg/{m}/{s}_test.go", "src/{m}/test_{s}.py", "web/src/{m}/{s}.spec.ts",
    "fixtures/{e}.env", "src/test/java/com/corp/{m}/{S}Test.java",
    "services/{m}/tests/conftest.py", "e2e/spec/{m}.yaml", "tests/{m}/testdata/{e}.json",
]
# Production paths, including look-alikes that a substring match would wrongly call tests.
PROD_TEMPLATES = [
    "src/{m}/{s}.py", "app/{m}/settings.py", "config/{e}.yaml", "deploy/{e}/values.yaml",
    "cmd/{m}/main.go", "internal/{m}/{s}.go", "src/main/resources/application-{e}.properties",
    ".env.{e}", "docker-compose.{e}.yml", "scripts/{s}.sh", "lib/{m}/{s}.rb",
    "web/src/{m}/{s}.ts", "terraform/{e}/main.tf", "ansible/group_vars/{e}.yml",
]
LOOKALIKE_TEMPLATES = [
    "latest/{s}.py", "contest/{m}/{s}.py", "attestation/{m}/config.go",
    "src/test_utils_prod/config.py", "testing_tools/{s}.py", "src/{m}/{s}_test.py",
    "src/{m}/tests.py", "src/{m}/{s}.spec.js", "src/{m}/test_{s}.json", "protest/{e}.yaml",
    "src/{m}/contest_test.rb", "specs-archive/{s}.md", "src/latest_tests_prod/{s}.go",
]
HOSTILE_PATHS = [
    "src/<script>alert(1)</script>/config.py",
    "docs/naïve café/secrets.md",
    "config\\windows\\prod.ini",
    "deploy/" + "/".join(["very-long-directory-name-" + "x" * 40] * 6) + "/settings.yaml",
    "src/$(whoami)/`id`.sh",
    "-rf/--output=leak.txt",
]

MATCH_NAMES = ["apikey", "client_id", "client_secret", "password", "token", "host", "username"]
OCCURRENCE_TAGS = ["DEFAULT_BRANCH", "FROM_HISTORICAL_SCAN", "SENSITIVE_FILE", "TEST_FILE"]
CLOSED_REASONS = ["test_credential", "false_positive", "low_risk"]

BOT_AUTHORS = [
    ("dependabot[bot]", "dependabot[bot]@users.noreply.github.com"),
    ("CI Bot", "ci-bot@corp.example"),
    ("renovate[bot]", "renovate[bot]@users.noreply.github.com"),
    ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com"),
]
NOREPLY_AUTHORS = [
    ("someone", "12345+someone@users.noreply.github.com"),
    ("Octo Dev", "98765+octodev@users.noreply.github.com"),
    ("No Reply", "noreply@corp.example"),
]
EXTERNAL_AUTHORS = [
    ("Freelance Dev", "freelance.dev@contractor.example"),
    ("Open Source Contributor", "oss.contributor@example.org"),
    ("Agency Partner", "dev@agency.example"),
    ("Former Vendor", "support@vendor.example"),
]
# Authors whose identity git can store (sha non-null) and ones it cannot (sha null).
HOSTILE_GIT_AUTHORS = [
    ("Evil Filter", "evil*)(uid=*@corp.example"),
    ("Back Slash", "back\\slash@corp.example"),
    ("Long " + "Name" * 60, "a" * 200 + "@corp.example"),
    ("李小龙", "li.xiaolong@corp.example"),
    ("Wildcard", "*@corp.example"),
]
HOSTILE_NONGIT_AUTHORS = [
    ("<script>alert('xss')</script>", "script.kiddie@corp.example"),
    ("Nul Byte", "nul\x00byte@corp.example"),
    ("Angle <brackets>", "angle>bracket@corp.example"),
]


def _iso(moment: datetime) -> str:
    # isoformat is several times faster than strftime; an aware time appends "+00:00" after 26
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


class _Random(random.Random):
    """Mersenne Twister seeded as usual, with randint and choice built on one random() call:
    the standard ones cost several Python calls each, and they run millions of times."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]


class _Weighted:
    """A weighted choice with its cumulative weights computed once (rng.choices recomputes)."""

    def __init__(self, items: list[Any], weights: list[float]) -> None:
        self.items = items
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect(self.cumulative, rng.random() * self.total)]


def start_of_today() -> datetime:
    today = datetime.now(UTC)
    return today.replace(hour=0, minute=0, second=0, microsecond=0)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum()) or "user"


# --- git objects -------------------------------------------------------------------------

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


# --- people ------------------------------------------------------------------------------

@dataclass
class _Author:
    """One identity that can author commits: who it is and how the playbooks should see it."""

    name: str
    email: str
    kind: str  # member, non_member, departed, inactive_member, external, bot, noreply, hostile
    person: int | None = None  # index into people
    in_git: bool = True


@dataclass
class _World:
    rng: random.Random
    now: datetime
    people: list[DirectoryPerson] = field(default_factory=list)
    old_emails: dict[int, str] = field(default_factory=dict)  # person -> pre-rename e-mail
    members: list[dict[str, Any]] = field(default_factory=list)
    member_of_person: dict[int, dict[str, Any]] = field(default_factory=dict)
    authors: dict[str, list[_Author]] = field(default_factory=dict)
    levels: list[int] = field(default_factory=list)  # 0 CEO, 1 VP, 2 manager, 3 engineer


def _build_people(world: _World, count: int) -> None:
    rng = world.rng
    used: set[str] = set()
    n_vps = max(2, count // 40)
    n_managers = max(4, count // 8)
    levels = [0] + [1] * n_vps + [2] * n_managers + [3] * (count - 1 - n_vps - n_managers)
    raw: list[tuple[str, str, str]] = []
    for index in range(count):
        given, surname = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        if index == 5:  # a name that is markup: it must stay data in every export
            given, surname = "<script>alert(1)</script>", "Tables"
        base = f"{_ascii(given) if index != 5 else 'bobby'}.{_ascii(surname)}"
        uid, n = base, 1
        while uid in used:
            n += 1
            uid = f"{base}{n}"
        used.add(uid)
        raw.append((uid, given, surname))

    managers_of: list[int | None] = []
    by_level: dict[int, list[int]] = {0: [], 1: [], 2: [], 3: []}
    for index, level in enumerate(levels):
        by_level[level].append(index)
    for level in levels:
        managers_of.append(None if level == 0 else rng.choice(by_level[level - 1]))

    departed = [False] * count
    for index, level in enumerate(levels):
        chance = (0.0, 0.2, 0.15, 0.12)[level]
        departed[index] = rng.random() < chance
    # Guaranteed shapes for the reassignment chain: a departed VP with a departed manager under
    # it, so some reports fall through both managers to CODEOWNERS or committers.
    vp0, mgr0 = by_level[1][0], by_level[2][0]
    departed[vp0] = departed[mgr0] = True
    managers_of[mgr0] = vp0
    for eng in by_level[3][:4]:
        managers_of[eng] = mgr0
        departed[eng] = True
    departed[0] = False
    departed[5] = False

    marker_turn = 0
    taken_aliases: set[str] = set()  # an address names one person only
    for index, (uid, given, surname) in enumerate(raw):
        markers: list[str] = []
        if departed[index]:
            markers = [LEAVER_MARKERS[marker_turn % 4]]
            marker_turn += 1
            for extra in LEAVER_MARKERS:
                if extra not in markers and rng.random() < 0.25:
                    markers.append(extra)
            markers.sort(key=LEAVER_MARKERS.index)
        ou = LEAVERS_OU if "leavers_ou" in markers else PEOPLE_OU
        aliases: list[str] = []
        if rng.random() < 0.18:  # "a.martin" for alice.martin, unless anna.martin has it
            short = f"{uid.split('.')[0][:1]}.{uid.split('.', 1)[-1]}@{EMAIL_DOMAIN}"
            if short not in taken_aliases:
                taken_aliases.add(short)
                aliases.append(short)
        if rng.random() < 0.06:
            aliases.append(f"{uid}@mail.{EMAIL_DOMAIN}")
        world.people.append(DirectoryPerson(
            uid=uid, dn=f"uid={uid},{ou}", email=f"{uid}@{EMAIL_DOMAIN}", given_name=given,
            surname=surname, display_name=f"{given} {surname}", aliases=aliases,
            departed=departed[index], leaver_markers=markers,
        ))
        if rng.random() < 0.05:
            world.old_emails[index] = f"{uid.replace('.', '')}@legacy-corp.example"
    for index, manager in enumerate(managers_of):
        if manager is not None:
            world.people[index].manager_dn = world.people[manager].dn
    world.levels = levels


def _member(world: _World, member_id: int, email: str, name: str, level: str,
            active: bool) -> dict[str, Any]:
    rng = world.rng
    created = world.now - timedelta(days=rng.randint(30, 1100), seconds=rng.randint(0, 86399),
                                    microseconds=rng.randint(0, 999999))
    login = None
    if rng.random() < 0.9:
        login = _iso(world.now - timedelta(days=rng.randint(0, 29), seconds=rng.randint(0, 86399),
                                           microseconds=rng.randint(0, 999999)))
    return {"id": member_id, "role": level, "access_level": level, "email": email, "name": name,
            "created_at": _iso(created), "last_login": login, "active": active}


def _build_members(world: _World) -> None:
    rng = world.rng
    levels = world.levels
    member_id = 1000 + rng.randint(0, 500)
    for index, person in enumerate(world.people):
        if person.departed:
            is_member, active = rng.random() < 0.8, rng.random() < 0.6
        else:
            is_member, active = rng.random() < 0.85, rng.random() > 0.04
        if index in (0, 1, 2, 5):  # the owner, first VPs and the markup name have accounts
            is_member, active = True, True
        if not is_member:
            continue
        if index == 0:
            level = "owner"
        elif levels[index] == 1:
            level = "manager"
        elif levels[index] == 2:
            level = "manager" if rng.random() < 0.5 else "member"
        else:
            level = "restricted" if rng.random() < 0.12 else "member"
        email = person.email
        roll = rng.random()
        if roll < 0.12:  # the API keeps the case people typed when invited
            local = person.email.split("@")[0]
            email = f"{local.title()}@Corp.Example" if roll < 0.08 else person.email.upper()
        elif roll < 0.14:
            email = person.email + " "
        member_id += rng.randint(1, 40)
        member = _member(world, member_id, email, person.display_name, level, active)
        world.members.append(member)
        world.member_of_person[index] = member
    world.members[1]["access_level"] = world.members[1]["role"] = "owner"
    # accounts with no directory entry: a contractor, an auditor, and a bot given a seat
    for name, email, level in [("Contractor One", "contractor.one@partner.example", "member"),
                               ("Auditor", "external.auditor@audit.example", "restricted"),
                               ("CI Bot", "ci-bot@corp.example", "member")]:
        member_id += rng.randint(1, 40)
        world.members.append(_member(world, member_id, email, name, level, True))


def _build_authors(world: _World) -> None:
    """Commit identities, grouped by how the playbooks must treat them."""
    groups: dict[str, list[_Author]] = {k: [] for k in (
        "member", "non_member", "departed", "inactive_member", "external", "bot", "noreply",
        "hostile_git", "hostile_nongit")}
    for index, person in enumerate(world.people):
        if "<" in person.display_name:
            continue  # git cannot store that name; it appears only through the API
        member = world.member_of_person.get(index)
        if person.departed:
            kind = "departed"
        elif member is None:
            kind = "non_member"
        elif not member["active"]:
            kind = "inactive_member"
        else:
            kind = "member"
        groups[kind].append(_Author(person.display_name, person.email, kind, index))
        for alias in person.aliases:
            groups[kind].append(_Author(person.display_name, alias, kind, index))
        if index in world.old_emails:
            groups[kind].append(_Author(person.display_name, world.old_emails[index], kind, index))
        if kind == "member" and world.rng.random() < 0.1:
            groups[kind].append(_Author(person.display_name, person.email.title(), kind, index))
    groups["external"] = [_Author(n, e, "external") for n, e in EXTERNAL_AUTHORS]
    groups["bot"] = [_Author(n, e, "bot") for n, e in BOT_AUTHORS]
    groups["noreply"] = [_Author(n, e, "noreply") for n, e in NOREPLY_AUTHORS]
    groups["hostile_git"] = [_Author(n, e, "hostile") for n, e in HOSTILE_GIT_AUTHORS]
    groups["hostile_nongit"] = [_Author(n, e, "hostile", in_git=False)
                                for n, e in HOSTILE_NONGIT_AUTHORS]
    world.authors = {k: v for k, v in groups.items() if v}


_AUTHOR_KINDS = ["member", "non_member", "departed", "inactive_member", "external", "bot",
                 "noreply", "hostile_git", "hostile_nongit"]
_AUTHOR_KIND = _Weighted(_AUTHOR_KINDS, [52, 12, 11, 4, 6, 6, 5, 2, 1])
_PROFILE = _Weighted(["prod", "test", "mixed", "lookalike", "null_path", "hostile"],
                     [67, 14, 8, 6, 2, 3])
_STATUS = _Weighted(["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"], [35, 25, 25, 15])
_TEST_VALIDITY = _Weighted(["invalid", "valid", "no_checker", "unknown"], [70, 10, 12, 8])
_VALIDITY = _Weighted(["valid", "invalid", "no_checker", "failed_to_check", "unknown"],
                      [25, 30, 22, 10, 13])
_SEVERITY = _Weighted(["critical", "high", "medium", "low", "info", "unknown"],
                      [8, 22, 35, 20, 10, 5])
_DETECTOR = _Weighted(DETECTORS, _DETECTOR_WEIGHTS)


def _pick_author(world: _World) -> _Author:
    rng = world.rng
    while True:
        group = world.authors.get(_AUTHOR_KIND.pick(rng))
        if group:
            return rng.choice(group)


# --- sources and repositories ---------------------------------------------------------------

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


# --- incidents -----------------------------------------------------------------------------

def _occurrence_count(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.60:
        return 1
    if roll < 0.82:
        return 2
    if roll < 0.92:
        return 3
    if roll < 0.985:
        return rng.randint(4, 20)
    if roll < 0.997:
        return rng.randint(21, 60)
    return rng.randint(101, 150)


def _path(rng: random.Random, templates: list[str]) -> str:
    stem = rng.choice(FILE_STEMS)
    return rng.choice(templates).format(m=rng.choice(MODULES), s=stem, S=stem.title(),
                                        e=rng.choice(ENVS))


def _distinct_paths(rng: random.Random, templates: list[str], count: int) -> list[str | None]:
    paths: list[str | None] = []
    seen: set[str] = set()
    attempts = 0
    while len(paths) < count:
        attempts += 1
        path = _path(rng, templates)
        if attempts > 20 * count:  # vocabulary exhausted: number the file
            stem, _, ext = path.rpartition(".")
            path = f"{stem}_{len(paths)}.{ext}"
        if path not in seen:
            seen.add(path)
            paths.append(path)
    return paths


def _paths_for(rng: random.Random, profile: str, count: int) -> list[str | None]:
    """Distinct file paths for an incident's occurrences, following its path profile."""
    if profile == "mixed" and count > 1:  # test files with one production file among them
        paths = _distinct_paths(rng, TEST_TEMPLATES, count - 1)
        paths.append(_path(rng, PROD_TEMPLATES + LOOKALIKE_TEMPLATES))
        rng.shuffle(paths)
        return paths
    if profile == "null_path":
        return _distinct_paths(rng, TEST_TEMPLATES, count - 1) + [None]
    if profile == "hostile":
        return [rng.choice(HOSTILE_PATHS)] + _distinct_paths(rng, PROD_TEMPLATES, count - 1)
    templates = {"test": TEST_TEMPLATES, "lookalike": LOOKALIKE_TEMPLATES}.get(
        profile, PROD_TEMPLATES + LOOKALIKE_TEMPLATES[:4])
    return _distinct_paths(rng, templates, count)


@dataclass
class _Plan:
    """One occurrence before its commit exists."""

    incident: dict[str, Any]
    source: dict[str, Any]
    path: str | None
    author: _Author
    when: datetime
    occurrence: dict[str, Any]
    commit_group: int  # occurrences of one group are files of one commit
    second: int  # the commit's time, in seconds since the epoch


def generate(seed: int, incidents: int, now: datetime | None = None) -> Workspace:
    """A whole workspace from a seed; `incidents` incidents spread over the last 12 months."""
    now = now or start_of_today()
    now = (now if now.tzinfo else now.replace(tzinfo=UTC)).replace(microsecond=0)
    rng = _Random(seed)
    world = _World(rng=rng, now=now)
    workspace_id = rng.randint(2, 999)

    _build_people(world, max(40, min(2000, incidents // 25 + 40)))
    _build_members(world)
    _build_authors(world)
    sources = _build_sources(world, max(20, min(60, 20 + incidents // 2500)))

    active_members = [m for m in world.members if m["active"]]
    deciders = [m for m in active_members if m["access_level"] in ("owner", "manager")]
    departed_members = [world.member_of_person[i] for i, p in enumerate(world.people)
                        if p.departed and i in world.member_of_person]
    tokens = [
        Token(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), name="sandbox full access",
              scopes=list(ALL_SCOPES), member_id=world.members[0]["id"]),
        Token(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), name="sandbox read only",
              scopes=list(READ_SCOPES), member_id=world.members[0]["id"]),
        Token(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), name="sandbox triage",
              scopes=["incidents:read", "incidents:write", "members:read"],
              member_id=deciders[-1]["id"]),
    ]

    incident_list: list[dict[str, Any]] = []
    plans: list[_Plan] = []
    incident_id = 10_000 + rng.randint(0, 5000)
    occurrence_id = 50_000 + rng.randint(0, 5000)
    commit_group = 0
    counts = [_occurrence_count(rng) for _ in range(incidents)]
    for forced, size in zip(range(0, incidents, max(1, incidents // 5)), (120, 35, 140, 25, 22)):
        counts[forced] = size  # a few incidents with more than 20 and more than 100 always
    source_pick = _Weighted(sources, [1.0 / (rank + 1) ** 0.7 for rank in range(len(sources))])
    year = 365 * 86400
    for index in range(incidents):
        incident_id += rng.randint(1, 3)
        source = source_pick.pick(rng)
        profile = _PROFILE.pick(rng)
        paths = _paths_for(rng, profile, counts[index])
        # a secret copied into many files lands in few commits: group big incidents' files
        groups: list[list[str | None]] = []
        position = 0
        while position < len(paths):
            size = 1 if len(paths) <= 3 else rng.randint(1, 8)
            groups.append(paths[position:position + size])
            position += size
        first = now - timedelta(seconds=rng.randint(3600, year))
        first_second = int(first.timestamp())
        span = int((now - first).total_seconds())
        offsets = sorted(rng.sample(range(0, span - 60), len(groups))) if len(groups) > 1 \
            else [0]
        main_author = _pick_author(world)
        status = _STATUS.pick(rng)
        test_like = profile in ("test", "mixed", "null_path")
        validity = (_TEST_VALIDITY if test_like else _VALIDITY).pick(rng)
        incident = _incident(world, incident_id, workspace_id, source, status, validity, profile)
        if status == "ASSIGNED" or (status in CLOSED_STATUSES and rng.random() < 0.4):
            # departed people keep a share of assignments: that is the problem to fix
            pool = departed_members if departed_members and rng.random() < 0.1 else world.members
            assignee = rng.choice(pool)
            incident["assignee_id"] = assignee["id"]
            incident["assignee_email"] = assignee["email"]
        if status in CLOSED_STATUSES:
            closer = rng.choice(deciders)
            closed_at = _iso(now - timedelta(seconds=rng.randint(60, max(61, span // 2))))
            if status == "RESOLVED":
                incident.update(resolved_at=closed_at, resolver_id=closer["id"],
                                secret_revoked=rng.random() < 0.6)
            else:
                incident.update(ignored_at=closed_at, ignorer_id=closer["id"],
                                ignore_reason=rng.choice(CLOSED_REASONS))
        incident_list.append(incident)
        for number, (group, offset) in enumerate(zip(groups, offsets)):
            author = main_author if number == 0 or rng.random() < 0.75 else _pick_author(world)
            commit_group += 1
            when = first + timedelta(seconds=offset)
            micro = rng.randint(0, 1000)
            for path in group:  # distinct, increasing times within one commit
                occurrence_id += 1
                micro += rng.randint(1, 100_000 // len(group))
                plans.append(_Plan(incident, source, path, author,
                                   when + timedelta(microseconds=micro), {"id": occurrence_id},
                                   commit_group, first_second + offset))

    repositories = _commit_all(world, sources, plans)
    occurrences = [plan.occurrence for plan in plans]
    _finish_counts(sources, incident_list, plans)

    workspace = Workspace(
        seed=seed, now=now, workspace_id=workspace_id, members=world.members, tokens=tokens,
        sources=sources, incidents=incident_list, occurrences=occurrences,
        people=world.people, repositories=repositories,
    )
    workspace.ground_truth = compute_ground_truth(workspace)
    return workspace


def _incident(world: _World, incident_id: int, workspace_id: int, source: dict[str, Any],
              status: str, validity: str, profile: str) -> dict[str, Any]:
    rng = world.rng
    detector = _DETECTOR.pick(rng)
    tags: list[str] = []
    public = source["visibility"] == "public"
    if public and rng.random() < 0.7:
        tags.append("PUBLICLY_EXPOSED")
    if rng.random() < 0.03:
        tags.append("PUBLICLY_LEAKED")
    if profile == "test" and rng.random() < 0.8 or profile == "mixed" and rng.random() < 0.3:
        tags.append("TEST_FILE")
    if rng.random() < 0.3:
        tags.append("DEFAULT_BRANCH")
    if detector["name"] in ("aws_iam", "github_access_token", "slackusertoken") and \
            rng.random() < 0.5:
        tags.append("REVOCABLE_BY_GG")
    if rng.random() < 0.05:
        tags.append("SENSITIVE_FILE")
    secret_id = incident_id * 3 + 7
    digest = hashlib.sha256(f"sandbox:{world.now.date()}:{incident_id}".encode()).hexdigest()
    feedback: list[dict[str, Any]] = []
    if rng.random() < 0.03:
        stamp = _iso(world.now - timedelta(days=rng.randint(1, 300)))
        feedback.append({
            "created_at": stamp, "updated_at": stamp, "email": "developer@contractor.example",
            "member_id": None,
            "answers": [{"type": "boolean", "field_ref": "actual_secret_yes_no",
                         "field_label": "Is this an actual secret?", "boolean": True},
                        {"type": "text", "field_ref": "remarks_text",
                         "field_label": "Additional remarks", "text": "rotated <b>already</b>"}],
        })
    tickets: list[dict[str, Any]] = []
    if rng.random() < 0.04:
        key = f"SEC-{rng.randint(1, 9999)}"
        tickets.append({"id": key, "type": "jira_cloud",
                        "link": f"https://sandbox-tenant.atlassian.example/browse/{key}"})
    custom_tags: list[dict[str, Any]] = []
    if rng.random() < 0.1:
        custom_tags.append({"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                            "key": "team", "value": rng.choice(MODULES)})
    return {
        "id": incident_id, "detector": detector, "date": "", "secret_id": secret_id,
        "secret_hash": f"sbx-not-a-secret-{digest[:44]}", "hmsl_hash": digest,
        "occurrences_count": 0, "status": status, "triggered_at": "", "ignored_at": None,
        "ignorer_id": None, "ignorer_api_token_id": None, "resolved_at": None,
        "resolver_id": None, "resolver_api_token_id": None, "secret_revoked": False,
        "validity": validity,
        "severity": _SEVERITY.pick(rng),
        "assignee_id": None, "assignee_email": None, "share_url": None,
        "feedback_list": feedback, "risk_score": rng.randint(0, 100),
        "severity_rule_id": rng.randint(100, 20000) if rng.random() < 0.5 else None,
        "is_vaulted": rng.random() < 0.05, "ignore_reason": None, "occurrences": None,
        "secret_presence": {"files_requiring_code_fix": 0, "files_pending_merge": 0,
                            "files_fixed": 0, "outside_vcs": 0, "removed_outside_vcs": 0,
                            "in_vcs": 0, "removed_in_vcs": 0},
        "regression": rng.random() < 0.03,
        "gitguardian_url":
            f"https://dashboard.gitguardian.com/workspace/{workspace_id}/incidents/{incident_id}",
        "tags": tags, "incident_name": detector["display_name"],
        "public_exposure": {"source_publicly_visible": public,
                            "public_incident_linked": "PUBLICLY_LEAKED" in tags,
                            "leaked_outside_perimeter": "PUBLICLY_LEAKED" in tags},
        "destination_tickets": tickets, "custom_tags": custom_tags,
    }


def _commit_all(world: _World, sources: list[dict[str, Any]],
                plans: list[_Plan]) -> list[Repository]:
    """Turn planned occurrences into commits, repository by repository, in date order."""
    rng = world.rng
    by_source: dict[int, list[_Plan]] = {source["id"]: [] for source in sources}
    for plan in plans:
        by_source[plan.source["id"]].append(plan)
    mailmap = _mailmap(world)
    start = world.now - timedelta(days=400)
    repositories = []
    for source in sources:
        history = _RepoHistory()
        codeowners_path = ".github/CODEOWNERS" if rng.random() < 0.3 else "CODEOWNERS"
        repo = Repository(full_name=source["full_name"], codeowners=_codeowners(world),
                          mailmap=mailmap, codeowners_path=codeowners_path)
        files = {codeowners_path: repo.codeowners, ".mailmap": repo.mailmap,
                 "README.md": f"# {source['full_name']}\n"}
        sha = history.commit(COMMITTER_NAME, COMMITTER_EMAIL, start, files, "Initial commit\n")
        repo.commits.append(Commit(sha=sha, author_name=COMMITTER_NAME,
                                   author_email=COMMITTER_EMAIL, date=start, files=files,
                                   message="Initial commit\n"))
        # a group's occurrences share one second (its commit's time): they stay together, in
        # the order they were planned (a stable sort)
        pending = sorted(by_source[source["id"]], key=lambda p: (p.second, p.commit_group))
        separator = "/-/commit/" if source["type"] == "gitlab" else "/commit/"
        for _, members in itertools.groupby(pending, key=lambda p: p.commit_group):
            group = list(members)
            for plan in group:
                _fill_occurrence(world, plan)
            lead = group[0]
            committed = [p for p in group if p.path is not None and p.author.in_git]
            if not committed:
                continue
            when = lead.when.replace(microsecond=0)
            files = {}
            for plan in committed:
                files[plan.path] = (
                    f"# {plan.incident['detector']['display_name']} sample, not a real secret\n"
                    f"{rng.choice(MATCH_NAMES)} = \"sandbox-fake-{plan.incident['id']}-"
                    f"{plan.occurrence['id']}\"\n")
            message = f"Update {lead.path.rsplit('/', 1)[-1] if lead.path else 'files'}\n"
            sha = history.commit(lead.author.name, lead.author.email, when, files, message)
            repo.commits.append(Commit(sha=sha, author_name=lead.author.name,
                                       author_email=lead.author.email, date=when, files=files,
                                       message=message))
            for plan in committed:
                plan.occurrence["sha"] = sha
                plan.occurrence["url"] = f"{source['url']}{separator}{sha}#L2"
        repositories.append(repo)
    return repositories


def _fill_occurrence(world: _World, plan: _Plan) -> None:
    rng = world.rng
    line = rng.randint(1, 3)
    matches = [{"name": rng.choice(MATCH_NAMES), "indice_start": 10, "indice_end": 50,
                "pre_line_start": None, "pre_line_end": None,
                "post_line_start": line, "post_line_end": line}]
    tags = ["PUBLIC"] if plan.source["visibility"] == "public" else []
    # occurrence tags never contradict the incident's: a veto on one is a veto on both
    tags += [t for t in ("PUBLICLY_EXPOSED", "PUBLICLY_LEAKED", "TEST_FILE")
             if t in plan.incident["tags"]]
    if rng.random() < 0.3:
        tags.append("DEFAULT_BRANCH")
    plan.occurrence.update({
        "incident_id": plan.incident["id"], "date": _iso(plan.when), "filepath": plan.path,
        "kind": "realtime" if rng.random() < 0.8 else "historical",
        "presence": "present" if rng.random() < 0.7 else "removed", "matches": matches,
        "tags": tags, "url": plan.source["url"], "author_info": plan.author.email,
        "author_name": plan.author.name, "sha": None,
        "change_type": "addition" if rng.random() < 0.9 else "deletion",
        "source": plan.source,
    })


def _finish_counts(sources: list[dict[str, Any]], incidents: list[dict[str, Any]],
                   plans: list[_Plan]) -> None:
    """Incident dates and counts from their occurrences; source counters from incidents."""
    for plan in plans:
        incident = plan.incident
        incident["occurrences_count"] += 1
        if not incident["date"] or plan.occurrence["date"] < incident["date"]:
            incident["date"] = plan.occurrence["date"]
        presence = incident["secret_presence"]
        presence["in_vcs" if plan.occurrence["presence"] == "present" else "removed_in_vcs"] += 1
    incident_source: dict[int, dict[str, Any]] = {}
    for plan in plans:
        incident_source.setdefault(plan.incident["id"], plan.source)
    breakdown = {s["id"]: {"open": {k: 0 for k in ("critical", "high", "medium", "low", "info",
                                                   "unknown")},
                           "closed": {k: 0 for k in ("critical", "high", "medium", "low", "info",
                                                     "unknown")}} for s in sources}
    for incident in incidents:
        triggered = datetime.fromisoformat(incident["date"][:-1]) + timedelta(
            seconds=37 + incident["id"] % 600)
        incident["triggered_at"] = _iso(triggered)
        for key in ("resolved_at", "ignored_at"):  # closing never precedes triggering
            if incident[key] and incident[key] < incident["triggered_at"]:
                incident[key] = _iso(triggered + timedelta(minutes=5))
        source = incident_source[incident["id"]]
        state = "open" if incident["status"] in OPEN_STATUSES else "closed"
        breakdown[source["id"]][state][incident["severity"]] += 1
    for source in sources:
        counts = breakdown[source["id"]]
        source["open_incidents_count"] = sum(counts["open"].values())
        source["closed_incidents_count"] = sum(counts["closed"].values())
        source["health"] = "at_risk" if source["open_incidents_count"] else "safe"
        source["secret_incidents_breakdown"] = {
            "open_secret_incidents": {"total": source["open_incidents_count"],
                                      "severity_breakdown": counts["open"]},
            "closed_secret_incidents": {"total": source["closed_incidents_count"],
                                        "severity_breakdown": counts["closed"]},
        }
