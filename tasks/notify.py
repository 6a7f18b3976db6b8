"""Deliver digests through Prefect notification blocks; record each message in the ledger.

Blocks are named `block-type/block-name` in the policy and loaded by that name:
- `slack-webhook/...`, `ms-teams-webhook/...`, `custom-webhook/...` (Prefect's own
  `SlackWebhook`, `MicrosoftTeamsWebhook`, `CustomWebhookNotificationBlock`) post the digest
  to their channel. Prefect's SSRF guard is set from the policy (`allow_private_urls`, off by
  default: a webhook that resolves to a private or loopback address is refused), whatever
  the stored block says (Prefect's own default lets private addresses through);
- `email-server-credentials/...` (prefect-email's `EmailServerCredentials`: any SMTP server,
  SSL, STARTTLS or plain, its password a secret field) e-mails it to the person.

A message that fails is recorded as `failed` with a detail that never holds the block's URL,
its password or the server's words beyond a status code, and is sent again by the next run
(tasks/decide/sla_escalation.py `plan_messages`). Nothing here raises: the incident notes are
already written when digests go out, and a delivery problem never undoes or blocks them.
"""
from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from clients.redact import scrub
from tasks.decide.sla_escalation import OUTBOX, Message, is_email_block

logger = logging.getLogger(__name__)

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_STATUS = re.compile(r"\b(?:error=|HTTP |status(?: code)?:? ?)([1-5]\d\d)\b", re.IGNORECASE)


@dataclass
class Delivery:
    message: Message
    status: str  # sent, failed, written, would_send
    detail: str = ""
    path: str | None = None

    def row(self) -> dict[str, Any]:
        return {"recipient": self.message.recipient, "block": self.message.block,
                "incidents": len(self.message.decision_ids), "status": self.status,
                "detail": self.detail, "file": self.path or ""}


@dataclass
class DeliveryReport:
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def failed(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.status == "failed"]

    def summary(self) -> str:
        if not self.deliveries:
            return "no digest to send"
        counts: dict[str, int] = {}
        for d in self.deliveries:
            counts[d.status] = counts.get(d.status, 0) + 1
        text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if self.failed:
            text += " (failed messages are sent again by the next run)"
        return f"{len(self.deliveries)} digest message(s): {text}"


def failure_text(exc: BaseException) -> str:
    """What went wrong, for the ledger and the logs: never a URL, a password or a body."""
    import httpx
    from prefect.blocks.abstract import NotificationError

    name = type(exc).__name__
    text = str(exc)
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the webhook answered HTTP {exc.response.status_code}"
    if isinstance(exc, httpx.TimeoutException):
        return "the webhook did not answer in time (timeout)"
    if isinstance(exc, httpx.HTTPError):
        return f"the webhook could not be reached ({name})"
    if isinstance(exc, ValueError) and "is not a valid URL" in text:
        if "private address" in text:
            return ("refused by Prefect's SSRF guard: the webhook resolves to a private or "
                    "loopback address (allow_private_urls is off)")
        if "could not be resolved" in text:
            return "the webhook's host could not be resolved"
        return "the webhook URL is not valid"
    if isinstance(exc, NotificationError):
        found = _STATUS.search(getattr(exc, "log", "") or text)
        code = f" (HTTP {found.group(1)})" if found else ""
        return f"the notification service did not accept the message{code}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the SMTP server refused the message ({exc.smtp_code})"
    if isinstance(exc, (smtplib.SMTPException, OSError)):
        return f"the SMTP server could not be used ({name})"
    if name == "ObjectNotFound":
        return "no such block (create it, or fix its name in the policy)"
    return name


def _safe(text: str, *secrets: str) -> str:
    return scrub(_URL.sub("[url removed]", text), *secrets)


def load_block(name: str) -> Any:
    """A block by 'block-type/block-name' (prefect-email registered for its e-mail type)."""
    import prefect_email  # noqa: F401 - registers EmailServerCredentials for Block.load
    from prefect.blocks.core import Block

    return Block.load(name, _sync=True)


def send(message: Message, block: Any, *, allow_private_urls: bool,
         email_from: str | None = None) -> None:
    """One message through one loaded block; raises on failure."""
    if is_email_block(message.block):
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = email_from or getattr(block, "username", None) or "gg-remediation@localhost"
        mail["To"] = message.address
        mail.set_content(message.body)
        with block.get_server() as server:
            server.send_message(mail)
        return
    if hasattr(block, "allow_private_urls"):
        # Prefect's SSRF guard, as the policy says (a stored block's own default lets private
        # addresses through); the check runs inside notify, before any request.
        block.allow_private_urls = allow_private_urls
    if hasattr(block, "raise_on_failure"):
        with block.raise_on_failure():
            block.notify(message.body, subject=message.subject)
    else:
        block.notify(message.body, subject=message.subject)


def write_file(message: Message, folder: Path, stamp: str) -> Path:
    """The digest as a text file: `<folder>/<stamp>/<recipient>.txt`."""
    safe = re.sub(r"[^A-Za-z0-9@._-]", "_", message.recipient)[:120] or "recipient"
    path = folder / stamp / f"{safe}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Subject: {message.subject}\n\n{message.body}\n", encoding="utf-8")
    return path


def deliver(messages: Iterable[Message], *, ledger: Any, run_id: str, playbook: str,
            dry_run: bool, outbox_dir: str | None, stamp: str, allow_private_urls: bool,
            email_from: str | None = None, loader: Any = load_block) -> DeliveryReport:
    """Send (or, in a dry run, only write to the outbox) each message; record real attempts."""
    report = DeliveryReport()
    blocks: dict[str, Any] = {}
    for message in messages:
        if message.block == OUTBOX:
            folder = Path(outbox_dir or ".") / ("dry-run" if dry_run else "sent")
            path = write_file(message, folder, stamp)
            delivery = Delivery(message, "would_send" if dry_run else "written", path=str(path))
        elif dry_run:
            delivery = Delivery(message, "would_send", "dry run: nothing sent")
        else:
            delivery = _send_one(message, blocks, loader, allow_private_urls, email_from)
        if not dry_run:
            ledger.record_notification(run_id, playbook, recipient=message.recipient,
                                       block=message.block, decision_ids=message.decision_ids,
                                       status=delivery.status, detail=delivery.detail)
        report.deliveries.append(delivery)
    return report


def _send_one(message: Message, blocks: dict[str, Any], loader: Any, allow_private_urls: bool,
              email_from: str | None) -> Delivery:
    secrets: list[str] = []
    try:
        if message.block not in blocks:
            blocks[message.block] = loader(message.block)
        block = blocks[message.block]
        secrets = _block_secrets(block)
        send(message, block, allow_private_urls=allow_private_urls, email_from=email_from)
    except Exception as exc:  # noqa: BLE001 - recorded, retried by the next run
        detail = _safe(failure_text(exc), *secrets)
        logger.warning("digest for %s through %s failed: %s", message.recipient, message.block,
                       detail)
        return Delivery(message, "failed", detail)
    return Delivery(message, "sent")


def _block_secrets(block: Any) -> list[str]:
    """Values of a block's secret fields (webhook URLs, passwords): never in a detail."""
    found = []
    for name in ("url", "password"):
        value = getattr(block, name, None)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, str) and len(value) >= 8:
            found.append(value)
    return found


# --- the weekly report's summary, through the same blocks --------------------------------------

from pydantic import BaseModel, ConfigDict, Field, field_validator  # noqa: E402

HEADLINE_KPIS = ("opened", "closed", "backlog", "sla_breaches", "time_to_close_median_days",
                 "publicly_exposed_open", "automated_closures")


class ReportDelivery(BaseModel):
    """Where the weekly report's summary goes: Prefect notification blocks, as the SLA ladder
    names them ('block-type/block-name'); e-mail blocks send it to `email_to`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blocks: tuple[str, ...] = Field((), description="Blocks the summary goes through.")
    email_to: tuple[str, ...] = Field((), description="Addresses e-mail blocks send it to.")
    email_from: str | None = Field(None, description="From address (default: the block's).")
    allow_private_urls: bool = Field(
        False, description="Let webhook blocks post to private addresses (SSRF guard off).")

    @field_validator("blocks", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        from tasks.decide.sla_escalation import SlaEscalationPolicy

        return SlaEscalationPolicy._blocks(value)  # the same 'type/name' rule


def report_summary(kpis: dict[str, Any], week: str, html_path: str) -> tuple[str, str]:
    """(subject, body): the headline KPIs with last week's values and where the report is."""
    def value(name: str) -> str:
        kpi = kpis.get(name) or {}
        now, before = kpi.get("value"), kpi.get("previous")
        text = "n/a" if now is None else str(now)
        return text + (f" (previous week {before})" if before is not None else "")

    lines = [f"GitGuardian weekly remediation report, {week}.", ""]
    lines += [f"- {name.replace('_', ' ')}: {value(name)}" for name in HEADLINE_KPIS]
    lines += ["", f"The full report: {html_path}"]
    late = (kpis.get("sla_breaches") or {}).get("value")
    subject = f"GitGuardian weekly report {week}" + (f": {late} SLA breaches" if late else "")
    return subject, _safe("\n".join(lines))


def deliver_report(delivery: ReportDelivery, subject: str, body: str,
                   loader: Any = load_block) -> list[dict[str, str]]:
    """Send the summary through each block (e-mail blocks: to each address). Never raises: a
    failure is in the returned rows (block, to, status, detail), the report stands."""
    rows = []
    for block_name in delivery.blocks:
        targets: tuple[str | None, ...] = (delivery.email_to if is_email_block(block_name)
                                           else (None,))
        for address in targets:
            message = Message("weekly-report", block_name, address, subject, body, ())
            secrets: list[str] = []
            try:
                block = loader(block_name)
                secrets = _block_secrets(block)
                send(message, block, allow_private_urls=delivery.allow_private_urls,
                     email_from=delivery.email_from)
                rows.append({"block": block_name, "to": address or "", "status": "sent",
                             "detail": ""})
            except Exception as exc:  # noqa: BLE001 - the report stands; said in the result
                detail = _safe(failure_text(exc), *secrets)
                logger.warning("weekly report summary through %s failed: %s", block_name, detail)
                rows.append({"block": block_name, "to": address or "", "status": "failed",
                             "detail": detail})
    return rows
