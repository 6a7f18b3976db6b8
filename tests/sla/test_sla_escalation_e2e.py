"""The SLA escalation ladder end to end, with real parts: the sandbox API over HTTP, the test
slapd holding the sandbox's people, a local Prefect server holding the real notification
blocks, a loopback webhook server receiving Slack, Teams and custom webhook posts from those
blocks, and a loopback SMTP server (aiosmtpd) receiving the e-mails of prefect-email's block.
"""
from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures import canary
from tests.fixtures.harness import run_flow
from tests.fixtures.receivers import SmtpReceiver, start_webhook, without_apprise_pacing

pytestmark = [pytest.mark.slapd, pytest.mark.prefect, pytest.mark.slow]

PLAYBOOK = "sla-escalation"


def monday_ten(box) -> datetime:
    """A working hour after the sandbox's day: Monday 10:00 UTC of the week after its `now`."""
    start = box.workspace.now.astimezone(UTC)
    day = start + timedelta(days=7 - start.weekday())
    return day.replace(hour=10, minute=0, second=0, microsecond=0)


@pytest.fixture
def receivers(tmp_path, monkeypatch):
    """(webhook, teams, smtp): an HTTP server for Slack and custom posts, an HTTPS one for
    Teams (its certificate trusted through REQUESTS_CA_BUNDLE), and an SMTP server."""
    from apprise.plugins.slack import NotifySlack

    from tests.fixtures.slapd import make_certificate

    webhook = start_webhook()
    certificate = make_certificate(tmp_path)
    teams = start_webhook(certificate)
    smtp = SmtpReceiver()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    # The real SlackWebhook block and apprise's Slack plugin, their Slack host pointed at the
    # loopback receiver (the plugin's one base URL; the block's URL stays Slack's shape).
    monkeypatch.setattr(NotifySlack, "webhook_url", f"{webhook.base}/services")
    without_apprise_pacing(monkeypatch)
    yield webhook, teams, smtp
    webhook.stop()
    teams.stop()
    smtp.stop()


def save_blocks(webhook, teams, smtp, *, custom_timeout: float = 10) -> dict[str, str]:
    """The blocks the policy names, saved in the test's Prefect server. Their tokens are made
    now: the tests look for them afterwards where they must never be."""
    from prefect.blocks.notifications import (
        CustomWebhookNotificationBlock,
        MicrosoftTeamsWebhook,
        SlackWebhook,
    )
    from prefect_email import EmailServerCredentials

    slack_tokens = ["T" + secrets.token_hex(4).upper(), "B" + secrets.token_hex(4).upper(),
                    secrets.token_hex(12)]
    SlackWebhook(url="https://hooks.slack.com/services/" + "/".join(slack_tokens)).save(
        "people", overwrite=True)
    signature = secrets.token_hex(16)
    teams_url = (f"{teams.base}/workflows/{secrets.token_hex(8)}/triggers/manual/paths/invoke"
                 f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={signature}")
    MicrosoftTeamsWebhook(url=teams_url).save("people", overwrite=True)
    CustomWebhookNotificationBlock(
        name="security", url=f"{webhook.base}/custom/security", timeout=custom_timeout,
        json_data={"text": "{{subject}}\n{{body}}"},
    ).save("security", overwrite=True)
    EmailServerCredentials(smtp_server="127.0.0.1", smtp_type="INSECURE",
                           smtp_port=smtp.port).save("smtp", overwrite=True)
    return {"slack": slack_tokens[2], "teams": signature}


def policy(**overrides):
    from tasks.decide.sla_escalation import SlaEscalationPolicy

    fields = dict(
        people_blocks=["email-server-credentials/smtp", "slack-webhook/people",
                       "ms-teams-webhook/people"],
        security_blocks=["custom-webhook/security", "email-server-credentials/smtp"],
        security_lead_email="security-lead@corp.example",
        # Stage 3 twenty days past the SLA: the seeded workspace then has every rung.
        escalate_after_days=20, allow_private_urls=True,
    )
    return SlaEscalationPolicy(**{**fields, **overrides})


def run(now, dry_run=False, **overrides):
    from flows.sla_escalation import sla_escalation

    return run_flow(sla_escalation, policy=policy(**overrides), dry_run=dry_run, max_actions=1000,
                    now=now)


def expected_recipients(result) -> Counter:
    """Digests per person the plan calls for: one per person (and one for security)."""
    return Counter({r for p in result["plan"] for r in eval_notify(p)})


def eval_notify(row) -> list[str]:
    import json

    return json.loads(row["arguments"])["notify"]


def slack_posts(webhook):
    return [r for r in webhook.received if r.path.startswith("/services/")]


def custom_posts(webhook):
    return [r for r in webhook.received if r.path == "/custom/security"]


def addressed(text: str) -> str:
    return text.split("For ", 1)[1].split(":", 1)[0]


def scan(*texts: str, tokens: dict[str, str]) -> None:
    for text in texts:
        assert not canary.secrets_in(text), canary.secrets_in(text)
        for value in tokens.values():
            assert value not in text


def test_one_digest_per_person_and_stage_through_every_block_and_none_again(
        playbook_env, receivers):
    webhook, teams, smtp = receivers
    tokens = save_blocks(webhook, teams, smtp)
    box = playbook_env.sandbox
    now = monday_ten(box)
    before = box.state()

    state, result = run(now)
    assert state.is_completed(), state.message
    rungs = Counter(p["reason"] for p in result["plan"])
    assert {"breached", "escalated"} <= set(rungs)
    assert any(r.startswith("approaching") for r in rungs)
    assert {o["result"] for o in result["outcomes"]} == {"applied"}

    # The notes: one per rung, each with its tag, on the incidents planned.
    after = box.state()
    for row in result["plan"]:
        ours = [n for n in after["notes"].get(row["incident_id"], [])
                if n not in before["notes"].get(row["incident_id"], [])]
        assert len(ours) == 1 and f"stage={row['reason']}" in ours[0]["comment"]

    # Who is told: each person once per block, the security team once per block.
    people = {r for r in expected_recipients(result) if r != "security"}
    assert people and "security" in expected_recipients(result)
    mails = Counter(tuple(m.to) for m in smtp.messages)
    assert mails == Counter({(p,): 1 for p in people} | {("security-lead@corp.example",): 1})
    slack = Counter(addressed(r.json()["attachments"][0]["text"]) for r in slack_posts(webhook))
    assert slack == Counter({p: 1 for p in people})
    assert len(teams.received) == len(people)
    [security] = custom_posts(webhook)
    assert "the security team" in security.json()["text"]
    # Each person's digest lists exactly the incidents planned for them, with their stage.
    for mail in smtp.messages:
        recipient = mail.to[0]
        who = "security" if recipient == "security-lead@corp.example" else recipient
        mine = [p for p in result["plan"] if who in eval_notify(p)]
        listed = {int(line.split()[1][1:]) for line in mail.body.splitlines()
                  if line.startswith("- #")}
        if len(mine) <= 50:
            assert listed == {p["incident_id"] for p in mine}
        else:
            assert listed < {p["incident_id"] for p in mine} and "more" in mail.body
    # A manager told at stage 2 is the directory's manager of the assignee.
    stage2 = [p for p in result["plan"] if p["reason"] == "breached"]
    assert all("the manager of" in p["evidence"] for p in stage2)

    texts = [m.body + m.subject for m in smtp.messages] + [r.body for r in webhook.received]
    texts += [r.body for r in teams.received]
    ledger = playbook_env.ledger()
    texts += [n.detail + n.recipient + n.block for n in ledger.notifications(PLAYBOOK)]
    scan(*texts, tokens=tokens)
    assert {n.status for n in ledger.notifications(PLAYBOOK)} == {"sent"}

    # A re-run: every rung is done, nothing is written or sent again.
    counts = (len(smtp.messages), len(webhook.received), len(teams.received))
    notes = box.state()["notes"]
    state, again = run(now + timedelta(minutes=5))
    assert state.is_completed(), state.message
    assert again["plan"] == []
    assert {s["reason"] for s in again["skipped"]} >= {"stage_done"}
    assert (len(smtp.messages), len(webhook.received), len(teams.received)) == counts
    assert box.state()["notes"] == notes


def test_quiet_hours_write_and_send_nothing(playbook_env, receivers):
    webhook, teams, smtp = receivers
    save_blocks(webhook, teams, smtp)
    box = playbook_env.sandbox
    saturday = monday_ten(box) - timedelta(days=2)
    before = box.state()
    state, result = run(saturday)
    assert state.is_completed(), state.message
    assert result["plan"] == [] and "quiet_hours" in {s["reason"] for s in result["skipped"]}
    evening = monday_ten(box) + timedelta(hours=10)  # 20:00 UTC
    state, result = run(evening)
    assert result["plan"] == []
    assert not smtp.messages and not webhook.received and not teams.received
    assert box.state()["notes"] == before["notes"]


@pytest.mark.parametrize("failure", ["500", "timeout"])
def test_a_failing_webhook_leaves_the_notes_records_it_and_the_next_run_delivers_once(
        playbook_env, receivers, failure):
    webhook, teams, smtp = receivers
    tokens = save_blocks(webhook, teams, smtp, custom_timeout=1)
    box = playbook_env.sandbox
    now = monday_ten(box)
    if failure == "500":
        webhook.status = 500  # Slack and the custom webhook answer 500
    else:
        webhook.delay = 2.5  # the custom webhook gives up after 1 s (Slack is answered at once)
        webhook.delayed_paths = ("/custom/",)
    state, result = run(now, people_blocks=["email-server-credentials/smtp",
                                            "slack-webhook/people"])
    assert state.is_completed(), state.message
    assert result["plan"] and {o["result"] for o in result["outcomes"]} == {"applied"}
    # The notes are all written whatever the webhook did.
    notes = box.state()["notes"]
    for row in result["plan"]:
        assert any(f"stage={row['reason']}" in n["comment"] for n in notes[row["incident_id"]])
    ledger = playbook_env.ledger()
    records = ledger.notifications(PLAYBOOK)
    failed = [n for n in records if n.status == "failed"]
    if failure == "500":
        assert {n.block for n in failed} == {"slack-webhook/people", "custom-webhook/security"}
        assert all("did not accept" in n.detail or "HTTP 500" in n.detail for n in failed)
    else:
        assert {n.block for n in failed} == {"custom-webhook/security"}
        assert all("timeout" in n.detail for n in failed)
    assert {n.block for n in records if n.status == "sent"} >= {"email-server-credentials/smtp"}
    scan(*(n.detail for n in records), tokens=tokens)
    mails = len(smtp.messages)

    # The receiver is healthy again: the next run delivers each failed message, once.
    webhook.status, webhook.delay = 200, 0.0
    received = len(webhook.received)
    state, again = run(now + timedelta(hours=1), people_blocks=["email-server-credentials/smtp",
                                                                 "slack-webhook/people"])
    assert state.is_completed(), state.message
    assert again["plan"] == []
    new = webhook.received[received:]
    assert Counter(r.path.split("/")[1] for r in new) == Counter(
        "services" if n.block.startswith("slack") else "custom" for n in failed)
    assert len(smtp.messages) == mails  # the e-mails had gone through: not sent twice
    received = len(webhook.received)
    run(now + timedelta(hours=2), people_blocks=["email-server-credentials/smtp",
                                                 "slack-webhook/people"])
    assert len(webhook.received) == received and len(smtp.messages) == mails


def test_prefects_ssrf_guard_stays_on_by_default(playbook_env, receivers):
    webhook, teams, smtp = receivers
    save_blocks(webhook, teams, smtp)
    now = monday_ten(playbook_env.sandbox)
    state, result = run(now, allow_private_urls=False, people_blocks=[],
                        security_blocks=["custom-webhook/security"])
    assert state.is_completed(), state.message
    assert not webhook.received  # the loopback receiver is a private address: refused
    [refused] = [n for n in playbook_env.ledger().notifications(PLAYBOOK)]
    assert refused.status == "failed" and "SSRF guard" in refused.detail
    assert "127.0.0.1" not in refused.detail


def test_a_human_reassignment_or_reopen_starts_the_ladder_again(playbook_env, receivers):
    webhook, teams, smtp = receivers
    save_blocks(webhook, teams, smtp)
    box = playbook_env.sandbox
    now = monday_ten(box)
    state, first = run(now, people_blocks=[], security_blocks=[])
    assert state.is_completed(), state.message
    breached = next(p for p in first["plan"] if p["reason"] == "breached")
    incident_id = breached["incident_id"]
    incident = box.state()["incidents"][incident_id]
    members = [m for m in box.state()["members"].values()
               if m["active"] and m["email"] != incident["assignee_email"]
               and m["access_level"] != "restricted"]
    box.human.assign(incident_id, members[0]["email"])
    state, second = run(now + timedelta(minutes=10), people_blocks=[], security_blocks=[])
    [row] = [p for p in second["plan"] if p["incident_id"] == incident_id] or [None]
    if row is not None:  # the new assignee's manager may be unknown: skipped, with a reason
        assert '"cycle": 2' in row["arguments"]
    else:
        skipped = {s["incident_id"]: s["reason"] for s in second["skipped"]}
        assert skipped[incident_id] != "stage_done"
    escalated = next(p["incident_id"] for p in first["plan"] if p["reason"] == "escalated")
    box.human.resolve(escalated)
    box.human.reopen(escalated)
    state, third = run(now + timedelta(minutes=20), people_blocks=[], security_blocks=[])
    [row] = [p for p in third["plan"] if p["incident_id"] == escalated] or [
        [s for s in third["skipped"] if s["incident_id"] == escalated]]
    assert "arguments" in row, row
    assert "\"cycle\": 2" in row["arguments"] and "reopened" in row["evidence"]


def test_reassigning_to_the_manager_is_written_once_and_is_not_a_reset(playbook_env, receivers):
    import json

    webhook, teams, smtp = receivers
    save_blocks(webhook, teams, smtp)
    box = playbook_env.sandbox
    now = monday_ten(box)
    state, first = run(now, reassign_to_manager=True, send_email=False)
    assert state.is_completed(), state.message
    moved = [p for p in first["plan"] if p["action"] == "assign"]
    assert moved, "the seeded workspace has breached incidents whose manager is a member"
    after = box.state()
    for row in moved:
        manager = json.loads(row["arguments"])["email"]
        assert after["incidents"][row["incident_id"]]["assignee_email"] == manager
        assert "reassigned to them" in row["evidence"]
    # The manager now holds them: our own reassignment starts no new cycle, nothing is repeated.
    state, again = run(now + timedelta(minutes=5), reassign_to_manager=True, send_email=False)
    assert state.is_completed(), state.message
    assert again["plan"] == []
    assert box.state()["incidents"] == after["incidents"]
