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
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from clients.directory import Lookup, Status
from clients.models import OPEN_STATUSES
from tasks import sla
from tasks.decide.evidence import (
    AUTHOR_LOOKUP_ERROR,
    DIRECTORY_ERROR,
    MANAGER_LOOKUP_ERROR,
    Cause,
    Evidence,
    first_yes,
    from_directory,
)
from tasks.decide.identity import by_normalised_address, is_bot_or_noreply, normalise_email
from tasks.decide.notes import clip, note_budget
from tasks.decide.paths import printable
from tasks.decide.plan import Action, Decision, Plan, Precondition, Skip

PLAYBOOK = "sla-escalation"
NOTE_BUDGET = note_budget(PLAYBOOK)
SECURITY = "security"  # the stage-3 recipient: the security lead and the security channel

# Rungs (the Decision's reason, stable): approaching_<percent>, breached, escalated.
BREACHED = "breached"
ESCALATED = "escalated"

# Skip reasons, stable: the skipped artifact, the ledger and the README name them.
SKIP_NO_SLA = "no_sla"  # a severity without an SLA (info, unknown)
SKIP_NOT_DUE = "not_due"  # below the first approaching threshold
SKIP_STAGE_DONE = "stage_done"  # this rung (or a higher one) was done in this cycle
SKIP_QUIET_HOURS = "quiet_hours"  # due, but it is quiet time in the policy's time zone
SKIP_NO_RECIPIENT = "no_recipient"  # stage 1: no assignee or member author to tell
SKIP_ASSIGNEE_DEPARTED = "assignee_departed"  # the departed-developer playbook's incident
SKIP_NO_MANAGER = "no_manager"  # stage 2: the directory names no active manager
SKIP_NOTES_LOOKUP_ERROR = "notes_lookup_error"  # our earlier notes could not be read
SKIP_DIRECTORY_ERROR = DIRECTORY_ERROR
SKIP_MANAGER_LOOKUP_ERROR = MANAGER_LOOKUP_ERROR
SKIP_AUTHOR_LOOKUP_ERROR = AUTHOR_LOOKUP_ERROR

# The tag each stage note carries (before the write path's marker): what a later run reads back.
STAGE_TAG = "[gg-remediation sla-escalation stage={rung} cycle={cycle} assignee={assignee}]"
STAGE_TAG_RE = re.compile(
    r"\[gg-remediation sla-escalation stage=(?P<rung>[a-z0-9_]+) cycle=(?P<cycle>\d+) "
    r"assignee=(?P<assignee>[^\]\s]*)\]"
)
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
        if len({_percent(v) for v in found}) != len(found):
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


def _percent(share: float) -> int:
    return int(round(share * 100))


def approaching(share: float) -> str:
    return f"approaching_{_percent(share)}"


def stage_of(rung: str) -> int:
    return 3 if rung == ESCALATED else 2 if rung == BREACHED else 1


def rung_order(rung: str) -> float:
    """Rungs compare by this: approaching_50 < approaching_90 < breached < escalated."""
    if rung == ESCALATED:
        return 3.0
    if rung == BREACHED:
        return 2.0
    try:
        return 1.0 + int(rung.rsplit("_", 1)[1]) / 1000
    except (IndexError, ValueError):
        return 1.0


# --- what the decide reads of the API models (clients/models.py); test stand-ins fit too ---


class IncidentView(Protocol):
    id: int
    status: str
    date: datetime | None
    severity: str | None
    assignee_email: str | None
    assignee_id: int | None


@dataclass(frozen=True)
class StageRecord:
    """A rung done earlier: from the ledger (an applied decision) or one of our notes' tags."""

    incident_id: int
    rung: str
    cycle: int
    assignee_after: str  # normalised; "" when the incident was left unassigned
    at: datetime  # the ledger's clock, or GitGuardian's for a note (`source`)
    source: str = "ledger"  # "ledger" or "note"


def record_from_decision(incident_id: int, arguments: Mapping[str, Any],
                         at: datetime) -> StageRecord | None:
    """The rung an applied decision of this playbook did (None: not one of ours)."""
    rung, cycle = arguments.get("sla_stage"), arguments.get("cycle")
    if not isinstance(rung, str) or not isinstance(cycle, int):
        return None
    after = arguments.get("email") or arguments.get("assignee") or ""
    return StageRecord(int(incident_id), rung, cycle, normalise_email(str(after)), at)


def records_from_note(incident_id: int, comment: str, at: datetime) -> list[StageRecord]:
    """The rungs a note's tags say were done (a note of ours holds one)."""
    return [StageRecord(int(incident_id), m["rung"], int(m["cycle"]),
                        normalise_email(m["assignee"]), at, "note")
            for m in STAGE_TAG_RE.finditer(comment or "")]


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


def describe_timing(opened_at: datetime, now: datetime, days: int) -> str:
    """'3.5 days left of 7' / 'late by 2.1 days (SLA 7 days)'."""
    left = (sla.due_at(opened_at, days) - now) / timedelta(days=1)
    if left >= 0:
        return f"{left:.1f} days left of its {days}-day SLA"
    return f"late by {-left:.1f} days (SLA {days} days)"


# --- who is told -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _People:
    directory: Mapping[str, Lookup]
    managers: Mapping[str, Sequence[Lookup]]
    members: Mapping[str, Any]  # active members by normalised e-mail

    def member_of(self, lookup: Lookup | None, *also: str) -> Any | None:
        addresses = list(also)
        if lookup is not None and lookup.person is not None:
            addresses += [lookup.person.email, *lookup.person.aliases]
        for address in addresses:
            member = self.members.get(normalise_email(address))
            if member is not None:
                return member
        return None


def _active_members(members: Iterable[Any]) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for member in sorted(members, key=lambda m: m.id):
        address = normalise_email(member.email)
        if member.active is True and address and not is_bot_or_noreply(address):
            index.setdefault(address, member)
    return index


@dataclass(frozen=True)
class _Owner:
    address: str  # normalised: the person told at stage 1, whose manager is told at stage 2
    role: str  # "the assignee" / "the commit author"


def _owner(incident: IncidentView, occurrences: Sequence[Any],
           people: _People) -> _Owner | Skip:
    """Who holds the incident: its assignee, or its most recent human member author."""
    assignee = normalise_email(incident.assignee_email)
    if assignee:
        lookup = people.directory.get(assignee)
        if lookup is None or lookup.status is Status.ERROR:
            found = from_directory(lookup, reason=SKIP_DIRECTORY_ERROR,
                                   subject=f"the assignee {printable(assignee, 120)}")
            return found.skip(incident.id)
        if lookup.status is Status.DEPARTED or (lookup.person and lookup.person.departed):
            return Skip(incident.id, SKIP_ASSIGNEE_DEPARTED,
                        f"The assignee {printable(assignee, 120)} left the company: the "
                        "departed-developer playbook hands the incident over first.")
        return _Owner(assignee, "the assignee")
    dated = sorted(occurrences, key=lambda o: (o.date is not None, o.date, o.id), reverse=True)
    for occurrence in dated:
        address = normalise_email(occurrence.author_info)
        if is_bot_or_noreply(address, getattr(occurrence, "author_name", None)):
            continue
        # The most recent human author only: an older one did not leak it last.
        member = people.members.get(address)
        lookup = people.directory.get(address)
        if member is None:
            if lookup is not None and lookup.status is Status.ERROR:
                return from_directory(lookup, reason=SKIP_AUTHOR_LOOKUP_ERROR,
                                      subject=f"the commit author {printable(address, 120)}"
                                      ).skip(incident.id)
            if lookup is not None and lookup.status is Status.ACTIVE:
                member = people.member_of(lookup)
        if lookup is not None and (lookup.status is Status.DEPARTED
                                   or (lookup.person is not None and lookup.person.departed)):
            member = None
        if member is None:
            return Skip(incident.id, SKIP_NO_RECIPIENT,
                        f"The incident is unassigned and its most recent commit author "
                        f"{printable(address, 120)} is not an active workspace member.")
        return _Owner(normalise_email(member.email), "the commit author")
    return Skip(incident.id, SKIP_NO_RECIPIENT,
                "The incident is unassigned and no human commit author is known.")


def _manager(incident_id: int, owner: _Owner, people: _People,
             depth: int) -> Evidence[Any] | Skip:
    """The owner's nearest manager the directory knows as active (tri-state)."""
    lookup = people.directory.get(owner.address)
    subject = f"{owner.role} {printable(owner.address, 120)}"
    if lookup is None or lookup.status is Status.ERROR:
        return from_directory(lookup, reason=SKIP_DIRECTORY_ERROR, subject=subject
                              ).skip(incident_id)
    if lookup.person is None:
        return Skip(incident_id, SKIP_NO_MANAGER,
                    f"The directory does not know {subject}: no manager to tell.")
    chain = list(people.managers.get(owner.address, ()))[:depth]

    def candidates() -> Iterable[Evidence[Any]]:
        for level, step in enumerate(chain, start=1):
            title = "manager" if level == 1 else f"manager at level {level}"
            yield from_directory(step, reason=SKIP_MANAGER_LOOKUP_ERROR,
                                 subject=f"the {title} of {subject}")

    found = first_yes(candidates())
    if found.is_unknown:
        return found.skip(incident_id)
    if found.value is None:
        return Skip(incident_id, SKIP_NO_MANAGER,
                    f"No active manager of {subject} in the directory (looked at "
                    f"{len(chain)} level(s), up to {depth}).")
    return found


# --- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cycle:
    number: int
    done: frozenset[str]
    why: str  # how the cycle was found (shown in the evidence)


def current_cycle(incident: IncidentView, records: Sequence[StageRecord],
                  reopened_at: datetime | None) -> _Cycle:
    """The incident's escalation cycle now, and the rungs done in it."""
    if not records:
        return _Cycle(1, frozenset(), "")
    latest = max(records, key=lambda r: (r.cycle, r.at, rung_order(r.rung)))
    assignee = normalise_email(incident.assignee_email)
    if assignee != latest.assignee_after:
        before = latest.assignee_after or "nobody"
        return _Cycle(latest.cycle + 1, frozenset(),
                      f"cycle {latest.cycle + 1}: reassigned from {before} to "
                      f"{assignee or 'nobody'} since the last rung")
    # A reopening is dated by GitGuardian's clock: compared with our note's date (the same
    # clock) when the note was read, else with the ledger's.
    noted_at = [r.at for r in records if r.cycle == latest.cycle and r.source == "note"]
    since = max(noted_at) if noted_at else latest.at
    if reopened_at is not None and reopened_at > since:
        return _Cycle(latest.cycle + 1, frozenset(),
                      f"cycle {latest.cycle + 1}: reopened at {reopened_at:%Y-%m-%d %H:%M} UTC")
    done = frozenset(r.rung for r in records if r.cycle == latest.cycle)
    return _Cycle(latest.cycle, done, "")


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
    people = _People(by_normalised_address(directory), by_normalised_address(managers),
                     _active_members(members))
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
        days = sla.sla_days(_text(incident.severity), sla_table)
        if days is None:
            skips.append(Skip(incident.id, SKIP_NO_SLA,
                              f"Severity {_text(incident.severity)} has no SLA."))
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


def _plan_rung(incident: IncidentView, rung: str, cycle: _Cycle, days: int, timing: str,
               people: _People, occurrences: Sequence[Any],
               policy: SlaEscalationPolicy) -> Decision | Skip:
    stage = stage_of(rung)
    assignee = normalise_email(incident.assignee_email)
    severity = _text(incident.severity)
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
        owner = _owner(incident, occurrences, people)
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
            found = _manager(incident.id, owner, people, policy.manager_depth)
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


def _text(value: Any) -> str:
    return str(getattr(value, "value", value) or "unknown")


# --- digests: one per person per run -----------------------------------------------------------


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
        days = sla.sla_days(_text(incident.severity), sla_table)
        if days is None or incident.date is None:
            continue
        late = (now - sla.due_at(incident.date, days)) / timedelta(days=1)
        for recipient in arguments.get("notify") or ():
            items.append(DigestItem(
                decision_id=decision_id, incident_id=incident_id,
                rung=str(arguments.get("sla_stage")), recipient=str(recipient),
                incident_name=printable(str(getattr(incident, "incident_name", None)
                                            or "incident"), 120),
                severity=_text(incident.severity),
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


def unknown_notes(detail: str) -> Evidence[Sequence[StageRecord]]:
    """Notes that could not be read, as evidence."""
    return Evidence.unknown(SKIP_NOTES_LOOKUP_ERROR, detail, Cause.ERROR)


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
