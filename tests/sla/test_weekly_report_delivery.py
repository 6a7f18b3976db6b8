"""The weekly report's summary through the same notification blocks: a custom webhook and
Slack on a loopback HTTP server, e-mail on a loopback SMTP server (real blocks, real servers)."""
from __future__ import annotations

import pytest

from tests.fixtures import canary
from tests.fixtures.receivers import SmtpReceiver, start_webhook, without_apprise_pacing

pytestmark = [pytest.mark.prefect, pytest.mark.slow]


def test_the_weekly_report_summary_goes_through_the_blocks(sandbox, prefect_server, tmp_path,
                                                            monkeypatch):
    import secrets

    from apprise.plugins.slack import NotifySlack
    from prefect.blocks.notifications import CustomWebhookNotificationBlock, SlackWebhook
    from prefect_email import EmailServerCredentials

    from flows.weekly_report import weekly_report
    from tasks.notify import ReportDelivery
    from tasks.report import frames

    webhook, smtp = start_webhook(), SmtpReceiver()
    try:
        monkeypatch.setattr(NotifySlack, "webhook_url", f"{webhook.base}/services")
        without_apprise_pacing(monkeypatch)
        for name, value in {"GITGUARDIAN_API_URL": sandbox.url,
                            "GITGUARDIAN_API_KEY": sandbox.token,
                            "GITGUARDIAN_REQUESTS_PER_MINUTE": "0",
                            "LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.sqlite'}"}.items():
            monkeypatch.setenv(name, value)
        token = secrets.token_hex(12)
        SlackWebhook(url=f"https://hooks.slack.com/services/T0AB/B0CD/{token}").save(
            "weekly", overwrite=True)
        CustomWebhookNotificationBlock(name="weekly", url=f"{webhook.base}/custom/weekly",
                                       json_data={"text": "{{subject}}\n{{body}}"}).save(
            "weekly", overwrite=True)
        EmailServerCredentials(smtp_server="127.0.0.1", smtp_type="INSECURE",
                               smtp_port=smtp.port).save("weekly", overwrite=True)
        week = frames.last_complete_week(sandbox.workspace.now).label
        delivery = ReportDelivery(
            blocks=["slack-webhook/weekly", "custom-webhook/weekly",
                    "email-server-credentials/weekly", "custom-webhook/no-such-block"],
            email_to=["security-team@corp.example"], allow_private_urls=True)
        result = weekly_report(week=week, output_dir=str(tmp_path / "reports"),
                               deliver_to=delivery)
    finally:
        webhook.stop()
        smtp.stop()
    html = result["files"]["report.html"]
    statuses = {(r["block"], r["status"]) for r in result["delivered"]}
    assert statuses == {("slack-webhook/weekly", "sent"), ("custom-webhook/weekly", "sent"),
                        ("email-server-credentials/weekly", "sent"),
                        ("custom-webhook/no-such-block", "failed")}
    [mail] = smtp.messages
    assert mail.to == ["security-team@corp.example"] and week in mail.subject
    [slack] = [r for r in webhook.received if r.path.startswith("/services/")]
    [custom] = [r for r in webhook.received if r.path == "/custom/weekly"]
    for text in (mail.body, slack.body, custom.json()["text"]):
        assert "sla breaches:" in text and "backlog:" in text and "previous week" in text
        assert "report.html" in text
        assert not canary.secrets_in(text) and token not in text
    assert html.endswith("report.html")
