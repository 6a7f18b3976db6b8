"""A seeded GitGuardian workspace: members, sources, incidents, occurrences, a directory of
people and the git history every occurrence cites.

Everything derives from `random.Random(seed)` and `now` (default: the start of the current UTC
day, so exports on one day are identical). Commit shas are computed here exactly as git does
(blob, tree and commit objects hashed with SHA-1), so the server can serve them before any
repository exists on disk; `sandbox.export` later writes the same history with `git
fast-import` and gets the same shas.

This module builds the incidents and occurrences and assembles the workspace; its parts live
beside it: people, members and commit authors (sandbox/people.py), sources and their git
history (sandbox/repositories.py), the fixed vocabulary and seeded helpers
(sandbox/vocabulary.py).
"""
from __future__ import annotations

import hashlib
import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from clients.models import CLOSED_STATUSES, OPEN_STATUSES
from sandbox.ground_truth import compute_ground_truth
from sandbox.people import (
    _Author,
    _build_authors,
    _build_members,
    _build_people,
    _pick_author,
    _World,
)
from sandbox.repositories import (
    _build_sources,
    _codeowners,
    _mailmap,
    _RepoHistory,
)
from sandbox.vocabulary import (
    _DETECTOR_WEIGHTS,
    ALL_SCOPES,
    CLOSED_REASONS,
    COMMITTER_EMAIL,
    COMMITTER_NAME,
    DETECTORS,
    ENVS,
    FILE_STEMS,
    HOSTILE_PATHS,
    LOOKALIKE_TEMPLATES,
    MATCH_NAMES,
    MODULES,
    PROD_TEMPLATES,
    READ_SCOPES,
    TEST_TEMPLATES,
    _iso,
    _Random,
    _Weighted,
    start_of_today,
)
from sandbox.workspace import Commit, Repository, Token, Workspace

_PROFILE = _Weighted(["prod", "test", "mixed", "lookalike", "null_path", "hostile"],
                     [67, 14, 8, 6, 2, 3])
_STATUS = _Weighted(["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"], [35, 25, 25, 15])
_TEST_VALIDITY = _Weighted(["invalid", "valid", "no_checker", "unknown"], [70, 10, 12, 8])
_VALIDITY = _Weighted(["valid", "invalid", "no_checker", "failed_to_check", "unknown"],
                      [25, 30, 22, 10, 13])
_SEVERITY = _Weighted(["critical", "high", "medium", "low", "info", "unknown"],
                      [8, 22, 35, 20, 10, 5])
_DETECTOR = _Weighted(DETECTORS, _DETECTOR_WEIGHTS)


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
