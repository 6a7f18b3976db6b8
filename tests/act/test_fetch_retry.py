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


# ------------------------------------------------------------------ on every network task


def network_tasks():
    from tasks import bulk_remediation, fetch, sla_escalation, weekly_report

    return [
        fetch.fetch_members, fetch.fetch_members_cached, fetch.fetch_incidents,
        fetch.fetch_occurrences,
        fetch.fetch_occurrences_of, fetch.fetch_incidents_by_id,
        weekly_report.fetch_report_incidents, weekly_report.fetch_report_members,
        weekly_report.fetch_report_occurrences, weekly_report.fetch_audit_log,
        weekly_report.fetch_report_history,
        bulk_remediation.fetch_selection,
        sla_escalation.fetch_stage_notes, sla_escalation.fetch_reopenings,
    ]


def test_every_task_that_calls_the_api_retries_on_the_one_condition():
    wrong = [t.name for t in network_tasks() if t.retry_condition_fn is not transient]
    assert wrong == []


def test_the_directory_tasks_are_not_retried():
    # The rule of tasks/enrich.py: no task retry against the directory.
    from tasks import enrich
    from tasks.bulk_remediation import managers_of

    for each in (managers_of, enrich.lookup_people, enrich.manager_chains,
                 enrich.owner_manager_chains):
        assert not each.retries, each.name


@pytest.mark.prefect
def test_a_401_in_the_weekly_report_and_bulk_fetches_is_not_retried(prefect_server, sandbox):
    """A real run on a real Prefect server against the sandbox, with a key it refuses: each
    fetch asks once (a retry would ask twice: the client itself never retries a 401)."""
    from prefect import flow

    from clients.gitguardian import AuthenticationError, GitGuardianClient
    from tasks.bulk_remediation import fetch_selection
    from tasks.decide.bulk_remediation import BulkAction, BulkRequest, BulkSelection
    from tasks.weekly_report import fetch_report_members

    client = GitGuardianClient(sandbox.url, "not-a-key-the-sandbox-knows",
                               requests_per_minute=None)
    request = BulkRequest(selection=BulkSelection(status=["TRIGGERED"]),
                          action=BulkAction(kind="note"), reason="retry check")
    members = fetch_report_members.with_options(retry_delay_seconds=0)
    selection = fetch_selection.with_options(retry_delay_seconds=0)

    @flow
    def both() -> list[str]:
        failed = []
        for name, call in (("members", lambda: members(client)),
                           ("selection", lambda: selection(client, request))):
            try:
                call()
            except AuthenticationError:
                failed.append(name)
        return failed

    assert both() == ["members", "selection"]
    assert client.request_counts["GET /v1/members"] == 1
    assert client.request_counts["GET /v1/incidents/secrets"] == 1
