"""Delivery details without servers: what a failure says (never the URL), which messages a run
sends given what earlier runs delivered, and the outbox."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tasks import notify
from tasks.decide import sla_escalation as ladder

NOW = datetime(2026, 10, 21, 10, 0, tzinfo=UTC)
SECRET_URL = "https://hooks.slack.com/services/T1/B2/very-secret-token-value"


@pytest.mark.parametrize("exc,says", [
    (ValueError(f"{SECRET_URL!r} is not a valid URL.  It resolves to the private address "
                "127.0.0.1."), "SSRF guard"),
    (ValueError(f"{SECRET_URL!r} is not a valid URL.  It could not be resolved."),
     "could not be resolved"),
    (httpx.HTTPStatusError("boom " + SECRET_URL, request=httpx.Request("POST", SECRET_URL),
                           response=httpx.Response(502)), "HTTP 502"),
    (httpx.ReadTimeout("timed out " + SECRET_URL), "timeout"),
    (RuntimeError(SECRET_URL), "RuntimeError"),
])
def test_a_failure_is_described_without_the_url(exc, says):
    text = notify.failure_text(exc)
    assert says in text and "very-secret-token-value" not in text and "hooks.slack" not in text


def test_an_apprise_failure_keeps_only_its_status_code():
    from prefect.blocks.abstract import NotificationError

    exc = NotificationError(log=f"Failed to send Slack notification to {SECRET_URL}: "
                                "Internal Server Error (error=500).")
    text = notify.failure_text(exc)
    assert text.endswith("(HTTP 500)") and "secret" not in text


def _items():
    incidents = {1: type("I", (), dict(id=1, status="ASSIGNED", severity="high",
                                        date=NOW - timedelta(days=8), incident_name="AWS",
                                        gitguardian_url="https://dashboard.example/i/1"))(),
                 2: type("I", (), dict(id=2, status="ASSIGNED", severity="high",
                                        date=NOW - timedelta(days=5), incident_name="GH",
                                        gitguardian_url="https://dashboard.example/i/2"))()}
    done = [("d1", 1, {"sla_stage": "breached", "notify": ["boss@corp.example"]}),
            ("d2", 2, {"sla_stage": "approaching_50", "notify": ["dev@corp.example"]}),
            ("d3", 1, {"sla_stage": "escalated", "notify": ["security"]})]
    return ladder.digest_items(done, incidents, NOW)


def test_messages_one_per_person_and_block_only_what_that_block_has_not_delivered():
    policy = ladder.SlaEscalationPolicy(
        people_blocks=["email-server-credentials/smtp", "slack-webhook/team"],
        security_blocks=["slack-webhook/sec", "email-server-credentials/smtp"])
    messages = ladder.plan_messages(_items(), set(), policy)
    assert {(m.recipient, m.block) for m in messages} == {
        ("boss@corp.example", "email-server-credentials/smtp"),
        ("boss@corp.example", "slack-webhook/team"),
        ("dev@corp.example", "email-server-credentials/smtp"),
        ("dev@corp.example", "slack-webhook/team"),
        ("security", "slack-webhook/sec"),  # no security lead: no e-mail for it
    }
    assert {m.address for m in messages if m.block.startswith("email")} == {
        "boss@corp.example", "dev@corp.example"}
    # The e-mail went out, Slack failed: the next run sends Slack only.
    delivered = {(m.decision_ids[0], m.recipient, m.block) for m in messages
                 if m.block.startswith("email")}
    again = ladder.plan_messages(_items(), delivered, policy)
    assert {m.block for m in again} == {"slack-webhook/team", "slack-webhook/sec"}


def test_a_dry_run_writes_the_outbox_and_records_nothing(tmp_path):
    policy = ladder.SlaEscalationPolicy(outbox_dir=str(tmp_path), people_blocks=["slack-webhook/x"])
    messages = ladder.plan_messages(_items(), set(), policy)

    class NoLedger:
        def record_notification(self, *a, **k):
            raise AssertionError("a dry run records nothing")

    def no_loader(name):
        raise AssertionError("a dry run loads no block")

    report = notify.deliver(messages, ledger=NoLedger(), run_id="r", playbook="p", dry_run=True,
                            outbox_dir=str(tmp_path), stamp="s", allow_private_urls=False,
                            loader=no_loader)
    assert {d.status for d in report.deliveries} == {"would_send"}
    files = sorted(p.name for p in (tmp_path / "dry-run" / "s").iterdir())
    assert files == ["boss@corp.example.txt", "dev@corp.example.txt", "security.txt"]
