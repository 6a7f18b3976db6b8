"""Shared pieces of the client tests: a client that never sleeps for real, and JSON factories."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from clients.gitguardian import GitGuardianClient
from clients.retry import RetryPolicy

BASE = "https://api.gg.test"
KEY = "test-token-full"


class Sleeps(list):
    """A sleeper that records the seconds it was asked to wait, and waits none of them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_client(sleeps: Sleeps) -> Callable[..., GitGuardianClient]:
    def make(max_attempts: int = 4, **kwargs: Any) -> GitGuardianClient:
        kwargs.setdefault("requests_per_minute", None)
        kwargs.setdefault(
            "retry", RetryPolicy(max_attempts=max_attempts, sleep=sleeps, random=lambda: 0.5)
        )
        return GitGuardianClient(BASE, KEY, **kwargs)

    return make


@pytest.fixture
def client(make_client) -> GitGuardianClient:
    return make_client()


def incident_json(incident_id: int = 1, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": incident_id,
        "detector": {"name": "generic_password", "display_name": "Generic Password"},
        "date": "2026-01-02T03:04:05.123456Z",
        "status": "TRIGGERED",
        "severity": "high",
        "validity": "valid",
        "assignee_id": None,
        "assignee_email": None,
        "share_url": None,
        "occurrences": None,
        "tags": [],
    }
    data.update(overrides)
    return data


def note_json(note_id: int = 9, comment: str = "hello", **overrides: Any) -> dict[str, Any]:
    data = {
        "id": note_id,
        "incident_id": 1,
        "member_id": 3,
        "api_token_id": None,
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": None,
        "comment": comment,
    }
    data.update(overrides)
    return data
