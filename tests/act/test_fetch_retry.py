"""Fetch tasks retry only what a later try can fix."""
import pytest

from clients.gitguardian import (
    AuthenticationError,
    ConnectionFailed,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from tasks.fetch import transient


class State:
    def __init__(self, exc):
        self.exc = exc

    def result(self):
        raise self.exc


@pytest.mark.parametrize("exc, retried", [
    (ConnectionFailed("connection failed", method="GET", path="/v1/health"), True),
    (ServerError("boom", status=503, method="GET", path="/v1/health"), True),
    (RateLimited("slow down", status=429, method="GET", path="/v1/health"), True),
    (AuthenticationError("Invalid API key.", status=401, method="GET", path="/v1/health"), False),
    (PermissionDenied("Permission denied.", status=403, method="GET", path="/v1/health"), False),
    (ValueError("bad filter"), False),
])
def test_only_transient_failures_are_retried(exc, retried):
    assert transient(None, None, State(exc)) is retried
