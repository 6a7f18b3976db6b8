"""The SLA escalation ladder's digests: one per person per run, and the messages that carry
them through notification blocks. Pure.

Part of the SLA escalation playbook (tasks/decide/sla_escalation.py); tasks/notify.py delivers
the messages.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from clients.models import OPEN_STATUSES
from tasks import sla
from tasks.decide.paths import printable
from tasks.decide.sla_stages import SECURITY, describe_timing, rung_order, severity_name, stage_of

if TYPE_CHECKING:
    from tasks.decide.sla_escalation import SlaEscalationPolicy


@dataclass(frozen=True)
class DigestItem:
    """One incident in one person's digest."""

    decision_id: str
    incident_id: int
    rung: str
    recipient: str  # normalised e-mail, or SECURITY
    incident_name: str
    severity: str
    timing: str  # "3.5 days left of its 7-day SLA" / "late by 2.1 days (SLA 7 days)"
    late_days: float  # negative: days left
    url: str  # the incident's GitGuardian page (never a share link)


@dataclass(frozen=True)
class Digest:
    recipient: str
    items: tuple[DigestItem, ...] = field(default_factory=tuple)

    @property
    def decision_ids(self) -> tuple[str, ...]:
        return tuple(sorted({i.decision_id for i in self.items}))


def digest_items(done: Iterable[tuple[str, int, Mapping[str, Any]]],
                 incidents: Mapping[int, Any], now: datetime,
                 sla_table: Mapping[str, int | None] | None = None) -> list[DigestItem]:
    """Items for rungs done (decision id, incident id, arguments) on incidents still open."""
    items = []
    for decision_id, incident_id, arguments in done:
        incident = incidents.get(incident_id)
        if incident is None or str(incident.status) not in OPEN_STATUSES:
            continue
        days = sla.sla_days(severity_name(incident.severity), sla_table)
        if days is None or incident.date is None:
            continue
        late = (now - sla.due_at(incident.date, days)) / timedelta(days=1)
        for recipient in arguments.get("notify") or ():
            items.append(DigestItem(
                decision_id=decision_id, incident_id=incident_id,
                rung=str(arguments.get("sla_stage")), recipient=str(recipient),
                incident_name=printable(str(getattr(incident, "incident_name", None)
                                            or "incident"), 120),
                severity=severity_name(incident.severity),
                timing=describe_timing(incident.date, now, days), late_days=round(late, 1),
                url=_page_url(getattr(incident, "gitguardian_url", None)),
            ))
    return items


def _page_url(value: Any) -> str:
    """The incident's dashboard page; anything else (a share link) is never passed on."""
    text = str(value or "")
    if "/share/" in text or not text.startswith("https://"):
        return ""
    return printable(text, 300)


def build_digests(items: Iterable[DigestItem]) -> list[Digest]:
    """One digest per recipient: each incident once (its highest rung), the latest first."""
    by_recipient: dict[str, dict[int, list[DigestItem]]] = {}
    for item in items:
        by_recipient.setdefault(item.recipient, {}).setdefault(item.incident_id, []).append(item)
    digests = []
    for recipient in sorted(by_recipient):
        chosen = []
        for group in by_recipient[recipient].values():
            top = max(group, key=lambda i: (rung_order(i.rung), i.decision_id))
            # Every item of the incident is delivered by this message (ids kept for the ledger).
            chosen.append(top)
            chosen.extend(i for i in group if i is not top)
        digests.append(Digest(recipient, tuple(chosen)))
    return digests


_STAGE_TITLES = {1: "SLA approaching", 2: "SLA breached", 3: "SLA breached, escalated"}


def render_digest(digest: Digest, policy: SlaEscalationPolicy) -> tuple[str, str]:
    """(subject, plain-text body): the person's incidents by stage, latest first, with links."""
    shown: dict[int, DigestItem] = {}
    for item in digest.items:
        current = shown.get(item.incident_id)
        if current is None or rung_order(item.rung) > rung_order(current.rung):
            shown[item.incident_id] = item
    ordered = sorted(shown.values(), key=lambda i: (-rung_order(i.rung), -i.late_days,
                                                    i.incident_id))
    who = "the security team" if digest.recipient == SECURITY else digest.recipient
    late = sum(1 for i in ordered if stage_of(i.rung) >= 2)
    subject = (f"GitGuardian SLA: {len(ordered)} incident(s) need attention"
               + (f", {late} past their SLA" if late else ""))
    lines = [f"For {who}: GitGuardian incidents chased by the SLA escalation ladder.", ""]
    for stage in (3, 2, 1):
        group = [i for i in ordered if stage_of(i.rung) == stage]
        if not group:
            continue
        lines.append(f"{_STAGE_TITLES[stage]} ({len(group)}):")
        for item in group[: policy.digest_max_items]:
            link = f" {item.url}" if item.url else ""
            lines.append(f"- #{item.incident_id} {item.incident_name} ({item.severity}): "
                         f"{item.timing}{link}")
        if len(group) > policy.digest_max_items:
            lines.append(f"- and {len(group) - policy.digest_max_items} more")
        lines.append("")
    lines.append("Each incident is told once per stage; a note on it says the same.")
    return subject, "\n".join(lines)


OUTBOX = "outbox"  # the pseudo-block of `outbox_dir`: digests written as files


@dataclass(frozen=True)
class Message:
    """One digest through one block: what a run sends, records and retries."""

    recipient: str  # normalised e-mail, or SECURITY
    block: str  # "block-type/block-name", or OUTBOX
    address: str | None  # where an e-mail block sends it (None: a channel post or a file)
    subject: str
    body: str
    decision_ids: tuple[str, ...]


def blocks_for(recipient: str, policy: SlaEscalationPolicy) -> tuple[str, ...]:
    blocks = policy.security_blocks if recipient == SECURITY else policy.people_blocks
    return tuple(blocks) + ((OUTBOX,) if policy.outbox_dir else ())


def is_email_block(block: str) -> bool:
    return block.split("/", 1)[0] == "email-server-credentials"


def plan_messages(items: Iterable[DigestItem], delivered: set[tuple[str, str, str]],
                  policy: SlaEscalationPolicy) -> list[Message]:
    """One message per recipient and block, holding the items that block has not delivered
    yet (this run's and earlier failures alike): one digest per person per run and channel."""
    items = list(items)
    messages = []
    for recipient in sorted({i.recipient for i in items}):
        mine = [i for i in items if i.recipient == recipient]
        for block in blocks_for(recipient, policy):
            address = None
            if is_email_block(block):
                address = policy.security_lead_email if recipient == SECURITY else recipient
                if not address:
                    continue  # nobody to e-mail (stage 3 without a security lead)
            pending = [i for i in mine if (i.decision_id, recipient, block) not in delivered]
            if not pending:
                continue
            [digest] = build_digests(pending)
            subject, body = render_digest(digest, policy)
            messages.append(Message(recipient, block, address, subject, body,
                                    digest.decision_ids))
    return messages
