"""Our own writes coming back (issue 16, requests per event): an `incident_assigned` webhook for
an assignment a real run of this project set out to write (its intent is in the ledger, recorded
before the write) starts nothing; any other assignment, a person's to a leaver included, is an
event as before. A real ledger (SQLite), the receiver served here, a real Prefect server."""
from __future__ import annotations

import logging
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from clients.ledger import Ledger
from tasks.decide.plan import Action, Decision
from tests.fixtures import canary

from .conftest import Receiver, gitguardian_event, gitguardian_events, wait_for_events


def _id() -> int:
    return 10_000_000 + secrets.randbelow(80_000_000)


def _assigned(incident_id: int, email: str | None, action: str = "incident_assigned") -> dict:
    return gitguardian_event(action, incident_id, status="assigned", assignee_email=email)


def _intend(ledger: Ledger, incident_id: int, email: str, *, dry_run: bool = False) -> None:
    run = ledger.start_run("commit-author-triage", dry_run=dry_run, parameters={})
    decision = Decision("commit-author-triage", incident_id, Action.ASSIGN,
                        {"email": email, "send_email": False}, "author", "Assigned.")
    ledger.record_intent(run, decision)


@pytest.fixture
def served(prefect_server, tmp_path):
    from deployments.webhooks import OwnAssignments, Settings, create_app
    from sandbox import serve_in_thread

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    app = create_app(canary.WEBHOOK_TOKEN, Settings(window=0.3), triggers={},
                     own_assignments=OwnAssignments(lambda: ledger, 600))
    base, stop = serve_in_thread(app)
    deadline = time.monotonic() + 20
    while True:
        try:
            if requests.get(base + "/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.02)
    try:
        yield Receiver(base + "/webhooks/gitguardian", base, canary.WEBHOOK_TOKEN, app), ledger
    finally:
        stop()


def test_our_own_assignment_starts_nothing_and_a_persons_still_does(served, caplog):
    caplog.set_level(logging.INFO, logger="deployments")
    receiver, ledger = served
    ours, to_leaver, nobody, dry, old = (_id() for _ in range(5))
    _intend(ledger, ours, "alice@corp.example")
    _intend(ledger, to_leaver, "alice@corp.example")
    _intend(ledger, dry, "alice@corp.example", dry_run=True)  # a dry run writes nothing
    stale = Ledger(str(ledger.url), clock=lambda: datetime.now(UTC) - timedelta(hours=1))
    _intend(stale, old, "alice@corp.example")  # an hour ago: not this assignment
    since = time.time() - 1

    answer = receiver.post(_assigned(ours, "Alice@Corp.example"))  # e-mails compare normalised
    assert answer.status_code == 200 and answer.json()["status"] == "own assignment"
    # A person assigns the incident we meant for Alice to a leaver: departed must look.
    assert receiver.post(_assigned(to_leaver, "leaver@corp.example")).json()["status"] == "accepted"
    for incident_id in (nobody, dry, old):
        sent = receiver.post(_assigned(incident_id, "alice@corp.example", "incident_reassigned"))
        assert sent.json()["status"] == "accepted"

    events = wait_for_events(since, lambda found: len(found) >= 2)
    time.sleep(1.0)
    by_name = {e.event: e for e in gitguardian_events(since)}
    assert by_name["gitguardian.incident.assigned"].payload["incident_ids"] == [to_leaver]
    assert by_name["gitguardian.incident.reassigned"].payload["incident_ids"] == sorted(
        [nobody, dry, old])
    assert len(events) == 2
    assert f"received incident_assigned for incident {ours}: the assignment a playbook" in (
        caplog.text)
    assert "alice@corp.example" not in caplog.text.lower()


def test_an_unreadable_ledger_lets_every_assignment_through(prefect_server):
    from deployments.webhooks import OwnAssignments

    def broken() -> Ledger:
        raise OSError("no ledger here")

    check = OwnAssignments(broken, 600)
    assert check(1, "alice@corp.example") is False
