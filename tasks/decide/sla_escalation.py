"""SLA escalation ladder: chase what is late, tell the owner, then their manager, then security.

Pure functional core: open incidents, the time, what earlier runs did (ledger and note marks),
directory answers and members in, a `Plan` out; then, from what was done, one digest per person.
No I/O and no Prefect here: the flow (flows/sla_escalation.py) gathers the inputs, the one
write path (tasks/act.py) writes the notes (and, if the policy says so, the reassignments), and
tasks/notify.py delivers the digests through Prefect notification blocks.

The ladder, per open incident, with the SLA per severity of tasks/sla.py (the weekly report's):
- stage 1, *approaching* (`approaching_50`, `approaching_90`: each threshold of
  `approaching_at`, a share of the SLA elapsed): the owner is told: the assignee, or for an
  unassigned incident the most recent human commit author who is an active workspace member;
- stage 2, *breached* (more time elapsed than the SLA allows, as the report counts it): the
  owner's manager is told (the directory's manager chain, nearest first, up to
  `manager_depth`: the first manager the directory knows as active; tri-state evidence as in
  tasks/decide/evidence.py: a lookup that failed stops the walk and the incident is skipped
  with `manager_lookup_error`, never told to a manager further up); with
  `reassign_to_manager` (off by default) the incident is also reassigned to that manager when
  they are an active member;
- stage 3, *escalated* (breached by more than `escalate_after_days`): the security lead and
  channel are told.

Each rung happens once per incident and cycle. What was done is read from the ledger (this
playbook's applied decisions carry their rung, cycle and the assignee they left) and from our
notes (each stage note carries a tag with the same facts, so a lost or other ledger does not
repeat a rung). A cycle ends, and the ladder starts again, when the incident's assignee is no
longer the one our last rung left (someone reassigned it) or the audit log shows it reopened
since. Only the highest rung due is planned: an incident first seen breached is not told it is
"approaching". Quiet hours and weekends (the policy's time zone) plan nothing: every due rung is
skipped as `quiet_hours` and happens at the first run after them.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clients.directory import Lookup, Status
from clients.models import OPEN_STATUSES
from tasks import sla
from tasks.decide.evidence import Cause, Evidence
from tasks.decide.identity import by_normalised_address, normalise_email
from tasks.decide.notes import clip, note_budget
from tasks.decide.plan import Action, Decision, Plan, Precondition, Skip
from tasks.decide.sla_digests import (
    OUTBOX,
    Digest,
    DigestItem,
    Message,
    blocks_for,
    build_digests,
    digest_items,
    is_email_block,
    plan_messages,
    render_digest,
)
from tasks.decide.sla_recipients import (
    SKIP_ASSIGNEE_DEPARTED,
    SKIP_AUTHOR_LOOKUP_ERROR,
    SKIP_DIRECTORY_ERROR,
    SKIP_MANAGER_LOOKUP_ERROR,
    SKIP_NO_MANAGER,
    SKIP_NO_RECIPIENT,
    People,
    active_members,
    manager_of,
    owner_of,
)
from tasks.decide.sla_stages import (
    BREACHED,
    ESCALATED,
    SECURITY,
    STAGE_TAG,
    STAGE_TAG_RE,
    Cycle,
    IncidentView,
    StageRecord,
    approaching,
    current_cycle,
    describe_timing,
    percent,
    record_from_decision,
    records_from_note,
    rung_order,
    severity_name,
    stage_of,
)

# Importers name these here, as before the stages, recipients and digests got their modules.
__all__ = [
    "BREACHED", "ESCALATED", "NOTE_BUDGET", "OUTBOX", "PLAYBOOK", "SECURITY",
    "SKIP_ASSIGNEE_DEPARTED", "SKIP_AUTHOR_LOOKUP_ERROR", "SKIP_DIRECTORY_ERROR",
    "SKIP_MANAGER_LOOKUP_ERROR", "SKIP_NO_MANAGER", "SKIP_NO_RECIPIENT", "SKIP_NO_SLA",
    "SKIP_NOT_DUE", "SKIP_NOTES_LOOKUP_ERROR", "SKIP_QUIET_HOURS", "SKIP_STAGE_DONE",
    "STAGE_TAG", "STAGE_TAG_RE", "Digest", "DigestItem", "IncidentView", "Message",
    "SlaEscalationPolicy", "StageRecord", "approaching", "blocks_for", "build_digests",
    "current_cycle", "decide_sla_escalation", "describe_timing", "digest_items", "due_rung",
    "is_email_block", "plan_messages", "quiet_now", "record_from_decision", "records_from_note",
    "render_digest", "render_note", "rung_order", "stage_of", "unknown_notes",
]

PLAYBOOK = "sla-escalation"
NOTE_BUDGET = note_budget(PLAYBOOK)

# Skip reasons, stable: the skipped artifact, the ledger and the README name them (with those of
# tasks/decide/sla_recipients.py: no_recipient, assignee_departed, no_manager, the lookup errors).
SKIP_NO_SLA = "no_sla"  # a severity without an SLA (info, unknown)
SKIP_NOT_DUE = "not_due"  # below the first approaching threshold
SKIP_STAGE_DONE = "stage_done"  # this rung (or a higher one) was done in this cycle
SKIP_QUIET_HOURS = "quiet_hours"  # due, but it is quiet time in the policy's time zone
SKIP_NOTES_LOOKUP_ERROR = "notes_lookup_error"  # our earlier notes could not be read

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SlaEscalationPolicy(BaseModel):
    """When to chase an incident against its SLA, whom to tell, and through which blocks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    approaching_at: tuple[float, ...] = Field(
        (0.5, 0.9),
        description="Stage 1 thresholds: shares of the SLA elapsed (0.5 = half of it) at which "
        "the owner is told the SLA is approaching; each once per incident.",
    )
    escalate_after_days: float = Field(
        3.0, gt=0, le=365,
        description="Stage 3: days past the SLA after which the security lead and channel are "
        "told.",
    )
    manager_depth: int = Field(
        2, ge=1, le=5,
        description="Stage 2: how far up the owner's management chain to look for an active "
        "manager (1 = the manager only).",
    )
    reassign_to_manager: bool = Field(
        False,
        description="Stage 2: also reassign the breached incident to that manager (when they "
        "are an active workspace member). Off: the manager is only told.",
    )
    send_email: bool = Field(
        True, description="With reassign_to_manager: let GitGuardian e-mail the new assignee."
    )
    security_lead_email: str | None = Field(
        None, description="Stage 3: the security lead's e-mail (told through the e-mail "
        "blocks of security_blocks).",
    )
    people_blocks: tuple[str, ...] = Field(
        (),
        description="Prefect notification blocks, as 'block-type/block-name', each person's "
        "digest goes through: an e-mail block (email-server-credentials/...) sends it to their "
        "address; a webhook block (slack-webhook/..., ms-teams-webhook/..., custom-webhook/...) "
        "posts it to its channel, one message per person.",
    )
    security_blocks: tuple[str, ...] = Field(
        (),
        description="The blocks the stage-3 digest goes through (the security channel; an "
        "e-mail block sends it to security_lead_email).",
    )
    timezone: str = Field("UTC", description="The IANA time zone of the quiet hours and weekends.")
    quiet_hours_start: str = Field(
        "19:00", description="Quiet hours start (HH:MM, local): nothing is escalated or sent."
    )
    quiet_hours_end: str = Field(
        "08:00", description="Quiet hours end (HH:MM, local). Equal to the start: no quiet hours."
    )
    quiet_weekends: bool = Field(True, description="Saturdays and Sundays are quiet all day.")
    email_from: str | None = Field(
        None, description="The From address of e-mailed digests (default: the e-mail block's "
        "username).",
    )
    allow_private_urls: bool = Field(
        False,
        description="Let webhook blocks post to private or loopback addresses (Prefect's SSRF "
        "guard off). Off in production; tests turn it on for their loopback receivers.",
    )
    outbox_dir: str | None = Field(
        None,
        description="Also write each digest as a file in this folder (a dry run writes what it "
        "would send there, under dry-run/); the demo sends nothing else.",
    )
    digest_max_items: int = Field(
        50, ge=1, le=500, description="The most incidents one digest lists (then 'and N more')."
    )

    @field_validator("approaching_at", mode="before")
    @classmethod
    def _thresholds(cls, value: Any) -> Any:
        values = (value,) if isinstance(value, (int, float, str)) else tuple(value or ())
        found = sorted({round(float(v), 4) for v in values})
        if any(not 0 < v < 1 for v in found):
            raise ValueError("approaching_at holds shares of the SLA strictly between 0 and 1")
        if len({percent(v) for v in found}) != len(found):
            raise ValueError("approaching_at: two thresholds round to the same percent")
        return tuple(found)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name, e.g. Europe/Paris)"
            ) from None
        return value

    @field_validator("quiet_hours_start", "quiet_hours_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _HHMM.match(value.strip()):
            raise ValueError("a time of day as HH:MM, 00:00 to 23:59")
        return value.strip()

    @field_validator("security_lead_email")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = normalise_email(value)
        if "@" not in value or any(c.isspace() for c in value):
            raise ValueError("security_lead_email must be a single e-mail address")
        return value

    @field_validator("people_blocks", "security_blocks", mode="before")
    @classmethod
    def _blocks(cls, value: Any) -> Any:
        values = (value,) if isinstance(value, str) else tuple(value or ())
        names = tuple(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))
        bad = [n for n in names if not _BLOCK_NAME.match(n)]
        if bad:
            raise ValueError(
                f"block names are 'block-type/block-name' (e.g. slack-webhook/security-team): "
                f"{', '.join(bad)}"
            )
        return names

    @property
    def rungs(self) -> tuple[str, ...]:
        """Every rung, lowest first."""
        return tuple(approaching(t) for t in self.approaching_at) + (BREACHED, ESCALATED)


# --- time --------------------------------------------------------------------------------------


def quiet_now(now: datetime, policy: SlaEscalationPolicy) -> str | None:
    """Why `now` is quiet time in the policy's zone (None: working time)."""
    local = now.astimezone(ZoneInfo(policy.timezone))
    if policy.quiet_weekends and local.weekday() >= 5:
        return f"it is {local:%A %H:%M} in {policy.timezone} (weekends are quiet)"
    start, end = _time(policy.quiet_hours_start), _time(policy.quiet_hours_end)
    clock = local.time().replace(tzinfo=None)
    if start == end:
        return None
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if inside:
        return (f"it is {local:%H:%M} in {policy.timezone}, within the quiet hours "
                f"{policy.quiet_hours_start}-{policy.quiet_hours_end}")
    return None


def _time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def due_rung(opened_at: datetime, now: datetime, days: int,
             policy: SlaEscalationPolicy) -> str | None:
    """The highest rung due at `now` for an incident opened at `opened_at` with a `days` SLA."""
    late = now - sla.due_at(opened_at, days)
    if late > timedelta(days=policy.escalate_after_days):
        return ESCALATED
    if sla.is_breached(opened_at, now, days):
        return BREACHED
    share = sla.elapsed_fraction(opened_at, now, days)
    reached = [t for t in policy.approaching_at if share >= t]
    return approaching(reached[-1]) if reached else None


# --- the decision ------------------------------------------------------------------------------


def decide_sla_escalation(
    incidents: Iterable[IncidentView],
    *,
    now: datetime,
    history: Mapping[int, Sequence[StageRecord]],
    directory: Mapping[str, Lookup],
    managers: Mapping[str, Sequence[Lookup]],
    members: Iterable[Any],
    occurrences_by_incident: Mapping[int, Sequence[Any]] | None = None,
    noted: Mapping[int, Evidence[Sequence[StageRecord]]] | None = None,
    reopened: Mapping[int, datetime] | None = None,
    policy: SlaEscalationPolicy = SlaEscalationPolicy(),
    sla_table: Mapping[str, int | None] | None = None,
) -> Plan:
    """The rungs to do now, and every open incident left alone with the reason.

    `history`: incident id -> rungs the ledger says were done. `noted`: incident id -> rungs our
    notes say were done, as evidence (None: notes not read, as in the flow's first pass; an
    incident missing from a given mapping, or an unknown, is skipped `notes_lookup_error` when a
    rung is due). `reopened`: incident id -> its latest reopening the audit log shows.
    `directory`: normalised e-mail -> Lookup of owners; `managers`: owner -> manager chain,
    nearest first. Same inputs in any order give the same plan.
    """
    people = People(by_normalised_address(directory), by_normalised_address(managers),
                    active_members(members))
    occurrences_by_incident = occurrences_by_incident or {}
    reopened = reopened or {}
    quiet = quiet_now(now, policy)
    decisions: list[Decision] = []
    skips: list[Skip] = []
    seen: set[int] = set()
    # One snapshot per incident id, the same one whatever the input order.
    for incident in sorted(incidents, key=lambda i: (i.id, str(i.status),
                                                     normalise_email(i.assignee_email),
                                                     str(i.date), str(i.severity))):
        if incident.id in seen:
            continue
        seen.add(incident.id)
        if str(incident.status) not in OPEN_STATUSES:
            continue
        days = sla.sla_days(severity_name(incident.severity), sla_table)
        if days is None:
            skips.append(Skip(incident.id, SKIP_NO_SLA,
                              f"Severity {severity_name(incident.severity)} has no SLA."))
            continue
        opened_at = incident.date
        if opened_at is None:
            skips.append(Skip(incident.id, SKIP_NOT_DUE, "The incident has no date."))
            continue
        rung = due_rung(opened_at, now, days, policy)
        timing = describe_timing(opened_at, now, days)
        if rung is None:
            share = sla.elapsed_fraction(opened_at, now, days)
            skips.append(Skip(incident.id, SKIP_NOT_DUE,
                              f"{share:.0%} of its {days}-day SLA elapsed; the first threshold is "
                              f"{policy.approaching_at[0]:.0%}." if policy.approaching_at else
                              f"{timing}."))
            continue
        records = list(history.get(incident.id, ()))
        notes = None if noted is None else noted.get(incident.id)
        if notes is not None and notes.is_yes:
            records += list(notes.value or ())
        cycle = current_cycle(incident, records, reopened.get(incident.id))
        done = [d for d in cycle.done if rung_order(d) >= rung_order(rung)]
        if done:
            skips.append(Skip(incident.id, SKIP_STAGE_DONE,
                              f"{rung} is due ({timing}); {max(done, key=rung_order)} was done "
                              f"in cycle {cycle.number}."))
            continue
        if quiet:
            skips.append(Skip(incident.id, SKIP_QUIET_HOURS,
                              f"{rung} is due ({timing}), but {quiet}."))
            continue
        planned = _plan_rung(incident, rung, cycle, days, timing, people,
                             occurrences_by_incident.get(incident.id, ()), policy)
        if isinstance(planned, Decision) and noted is not None and (
                notes is None or not notes.is_yes):
            detail = notes.detail if notes is not None else "The incident's notes were not read."
            planned = Skip(incident.id, SKIP_NOTES_LOOKUP_ERROR,
                           f"{detail} Our earlier stage notes cannot be checked, so no stage is "
                           "repeated; the next run tries again.")
        (decisions if isinstance(planned, Decision) else skips).append(planned)
    return Plan(PLAYBOOK, tuple(decisions), tuple(skips))


def _plan_rung(incident: IncidentView, rung: str, cycle: Cycle, days: int, timing: str,
               people: People, occurrences: Sequence[Any],
               policy: SlaEscalationPolicy) -> Decision | Skip:
    stage = stage_of(rung)
    assignee = normalise_email(incident.assignee_email)
    severity = severity_name(incident.severity)
    facts = f"{severity.capitalize()} incident, {timing}."
    if cycle.why:
        facts += f" A new escalation cycle ({cycle.why})."
    arguments: dict[str, Any] = {"sla_stage": rung, "cycle": cycle.number,
                                 "assignee": assignee or None}
    action = Action.NOTE
    if stage == 3:
        arguments["notify"] = [SECURITY]
        told = "the security team is told"
        if policy.security_lead_email:
            told += f" ({policy.security_lead_email})"
        evidence = (f"{facts} Stage 3 (escalated: over {policy.escalate_after_days:g} days "
                    f"late): {told}.")
    else:
        owner = owner_of(incident, occurrences, people)
        if isinstance(owner, Skip):
            if stage == 1 or owner.reason != SKIP_NO_RECIPIENT:
                return owner
            return Skip(incident.id, SKIP_NO_MANAGER,
                        f"{owner.evidence} Nobody's manager to tell at stage 2.")
        if stage == 1:
            arguments["notify"] = [owner.address]
            evidence = (f"{facts} Stage 1 ({rung.replace('_', ' ')}% of the SLA): "
                        f"{owner.role} {owner.address} is told.")
        else:
            found = manager_of(incident.id, owner, people, policy.manager_depth)
            if isinstance(found, Skip):
                return found
            manager = normalise_email(found.value.email)
            arguments["notify"] = [manager]
            evidence = (f"{facts} Stage 2 (breached): {manager}, the manager of {owner.role} "
                        f"{owner.address}, is told")
            if policy.reassign_to_manager:
                member = people.member_of(Lookup(Status.ACTIVE, found.value), manager)
                if member is not None and normalise_email(member.email) != assignee:
                    action = Action.ASSIGN
                    arguments.update(email=member.email, send_email=policy.send_email)
                    evidence += " and the incident is reassigned to them"
                else:
                    evidence += (" (not reassigned: not an active workspace member)"
                                 if member is None else " (already the assignee)")
            evidence += "."
    return Decision(
        playbook=PLAYBOOK,
        incident_id=incident.id,
        action=action,
        arguments=arguments,
        reason=rung,
        evidence=evidence,
        # Written only while the incident is open and held by the same person as planned.
        precondition=Precondition(statuses=OPEN_STATUSES, assignee_email=incident.assignee_email,
                                  check_assignee=True, before_note=True),
    )


def render_note(decision: Decision) -> str:
    """The stage note: what is late, who is told, and the tag a later run reads back."""
    args = decision.arguments
    after = args.get("email") or args.get("assignee") or ""
    tag = STAGE_TAG.format(rung=args["sla_stage"], cycle=args["cycle"],
                           assignee=normalise_email(str(after)) or "")
    text = f"SLA escalation: {decision.evidence}"
    return f"{clip(text, NOTE_BUDGET - len(tag) - 2)}\n\n{tag}"


def unknown_notes(detail: str) -> Evidence[Sequence[StageRecord]]:
    """Notes that could not be read, as evidence."""
    return Evidence.unknown(SKIP_NOTES_LOOKUP_ERROR, detail, Cause.ERROR)
