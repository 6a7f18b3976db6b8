"""A small hand-built Workspace in the API's exact shapes, for server tests.

Independent of sandbox.generator so the server's tests say what they expect without depending
on generated mixes. Values are deterministic; no realistic secret appears anywhere.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sandbox.store import iso
from sandbox.workspace import Workspace

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
STATUSES = ["TRIGGERED", "ASSIGNED", "RESOLVED", "IGNORED"]
SEVERITIES = ["critical", "high", "medium", "low", "info", "unknown"]
VALIDITIES = ["valid", "invalid", "failed_to_check", "no_checker", "unknown"]
TAG_SETS = [[], ["TEST_FILE"], ["PUBLICLY_EXPOSED", "DEFAULT_BRANCH"], ["SENSITIVE_FILE"]]
DETECTORS = [("aws_iam", "AWS IAM Keys"), ("github_token", "GitHub Token"),
             ("generic_password", "Generic Password")]


def member(member_id: int, name: str, access_level: str, active: bool = True) -> dict:
    return {
        "id": member_id, "role": access_level, "access_level": access_level,
        "email": f"{name}@corp.example", "name": name.replace(".", " ").title(),
        "created_at": iso(NOW - timedelta(days=400 - member_id)),
        "last_login": None if member_id % 2 else iso(NOW - timedelta(days=member_id)),
        "active": active,
    }


def source(source_id: int, full_name: str) -> dict:
    return {
        "id": source_id, "type": "github", "full_name": full_name, "health": "at_risk",
        "source_criticality": "unknown", "default_branch": "main",
        "default_branch_head": None, "open_incidents_count": 0, "closed_incidents_count": 0,
        "last_scan": {"date": iso(NOW - timedelta(days=1)), "status": "finished",
                      "failing_reason": "", "commits_scanned": 100, "duration": "1.5",
                      "branches_scanned": 1, "progress": 100},
        "monitored": True, "monitoring_status": "monitored", "visibility": "private",
        "external_id": str(900 + source_id),
        "secret_incidents_breakdown": {
            "open_secret_incidents": {"total": 0, "severity_breakdown": {
                s: 0 for s in SEVERITIES}},
            "closed_secret_incidents": {"total": 0, "severity_breakdown": {
                s: 0 for s in SEVERITIES}},
        },
        "url": f"https://github.com/{full_name}", "provider_metadata": {"archived": False},
        "deleted": False,
    }


def incident(incident_id: int, members: list[dict]) -> dict:
    n = incident_id
    status = STATUSES[n % 4]
    assignee = members[n % len(members)] if status in ("ASSIGNED", "RESOLVED") else None
    detector, display = DETECTORS[n % len(DETECTORS)]
    date = NOW - timedelta(days=n % 300, hours=n % 24)
    closed_at = iso(date + timedelta(days=3))
    return {
        "id": n,
        "detector": {"name": detector, "display_name": display, "nature": "specific",
                     "family": "credentials", "category": "cloud_provider",
                     "detector_group_name": detector, "detector_group_display_name": display},
        "date": iso(date), "secret_id": 5000 + n, "secret_hash": f"hash-{n:06d}",
        "hmsl_hash": f"{n:064x}", "occurrences_count": 0, "status": status,
        "triggered_at": iso(date + timedelta(minutes=5)),
        "ignored_at": closed_at if status == "IGNORED" else None,
        "ignorer_id": members[0]["id"] if status == "IGNORED" else None,
        "ignorer_api_token_id": None,
        "resolved_at": closed_at if status == "RESOLVED" else None,
        "resolver_id": members[0]["id"] if status == "RESOLVED" else None,
        "resolver_api_token_id": None,
        "secret_revoked": status == "RESOLVED",
        "validity": VALIDITIES[n % 5], "severity": SEVERITIES[n % 6],
        "assignee_id": assignee["id"] if assignee else None,
        "assignee_email": assignee["email"] if assignee else None,
        "share_url": None,
        "feedback_list": [] if n % 7 else [{
            "created_at": iso(date), "updated_at": iso(date), "email": "dev@corp.example",
            "member_id": None, "answers": [{"type": "boolean", "field_ref": "actual_secret_yes_no",
                                            "field_label": "Is this an actual secret?",
                                            "boolean": True}]}],
        "risk_score": (n * 37) % 101, "severity_rule_id": None, "is_vaulted": False,
        "ignore_reason": "test_credential" if status == "IGNORED" else None,
        "occurrences": None,
        "secret_presence": {"files_requiring_code_fix": 0, "files_pending_merge": 0,
                            "files_fixed": 0, "outside_vcs": 0, "removed_outside_vcs": 0,
                            "in_vcs": 1, "removed_in_vcs": 0},
        "regression": False,
        "gitguardian_url": f"https://dashboard.gitguardian.com/workspace/1/incidents/{n}",
        "tags": list(TAG_SETS[n % len(TAG_SETS)]), "incident_name": display,
        "public_exposure": {"source_publicly_visible": False, "public_incident_linked": False,
                            "leaked_outside_perimeter": False},
        "destination_tickets": [], "custom_tags": [],
    }


def occurrence(occurrence_id: int, incident_row: dict, src: dict, index: int) -> dict:
    sha = f"{occurrence_id:040x}"
    filepath = ["src/app/settings.py", "tests/test_settings.py", "config/prod.yaml"][index % 3]
    return {
        "id": occurrence_id, "incident_id": incident_row["id"], "date": incident_row["date"],
        "filepath": filepath, "kind": "realtime", "presence": "present" if index % 2 else "removed",
        "matches": [{"name": "apikey", "indice_start": 1, "indice_end": 20, "pre_line_start": 1,
                     "pre_line_end": 1, "post_line_start": None, "post_line_end": None}],
        "tags": ["TEST_FILE"] if filepath.startswith("tests/") else [],
        "url": f"{src['url']}/commit/{sha}", "author_info": f"dev{index % 3}@corp.example",
        "author_name": f"Dev {index % 3}", "sha": sha, "change_type": "addition",
        "source": src,
    }


def build_workspace(incidents: int = 60, seed: int = 1) -> Workspace:
    members = [member(1, "olivia.owner", "owner"), member(2, "max.manager", "manager"),
               member(3, "mia.member", "member"), member(4, "rex.restricted", "restricted"),
               member(5, "ian.inactive", "member", active=False)]
    sources = [source(10, "acme/payments-api"), source(11, "acme/web-app")]
    rows, occurrences = [], []
    next_occurrence = 1000
    for n in range(1, incidents + 1):
        row = incident(n, members[:4])
        count = 25 if n == 3 else 1 + n % 3  # incident 3 has more than one page of 20
        for index in range(count):
            occurrences.append(occurrence(next_occurrence, row, sources[n % 2], index))
            next_occurrence += 1
        row["occurrences_count"] = count
        rows.append(row)
    return Workspace(seed=seed, now=NOW, workspace_id=1, members=members, tokens=[],
                     sources=sources, incidents=rows, occurrences=occurrences)
