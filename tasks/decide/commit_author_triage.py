"""Commit-author triage: hand each unassigned incident to the workspace member who leaked it.

Pure: incidents, occurrences, members, directory answers, the merged `.mailmap`, and optionally
CODEOWNERS owners and open-incident counts in; a Plan out.

An occurrence's author e-mail is normalised, mapped through `.mailmap`, then through the
directory (an alias resolves to the person's primary address), and matched by equality to the
active members' normalised e-mails. Never an assignee, whatever the policy: a non-member, an
inactive member, a bot or no-reply address, and anyone the directory says left (those incidents
belong to the departed-developer playbook). Several member authors: the author of the most
recent occurrence (by date, then occurrence id).

Choices the brief left open:
- An incident with no member author, a departed author and no author the directory knows as
  active is skipped as "author_departed" whatever the fallback: it is the departed playbook's.
- The CODEOWNERS and least-loaded fallbacks need every occurrence seen (else "occurrences_unseen"):
  an unseen occurrence could name a member author.
- Least-loaded counts the open incidents given plus the assignments made earlier in this same
  plan (incidents in id order), so one run spreads the work instead of piling it on one person.
- Evidence is tri-state (tasks/decide/evidence.py): an author whose directory lookup failed
  stops the walk through the authors (`author_lookup_error`), never the next, older author; so
  does a failed lookup of a CODEOWNERS owner or of the CODEOWNERS file (`owner_lookup_error`) and
  of a group member (`group_lookup_error`). An address the directory was not asked about is read
  as one it does not know (the flow asks about every author; owners and the group are matched
  to members only).
- A share goes with the assignment (or alone under "leave") when the most recent human author
  is not a member and not departed; it is skipped for an incident that already has a share link.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clients.directory import Lookup, Status
from clients.models import OPEN_STATUSES
from tasks.decide.evidence import (
    AUTHOR_LOOKUP_ERROR,
    GROUP_LOOKUP_ERROR,
    OWNER_LOOKUP_ERROR,
    Evidence,
    from_directory,
    listed,
)
from tasks.decide.identity import (
    by_normalised_address,
    departed_addresses,
    is_bot_or_noreply,
    normalise_email,
)
from tasks.decide.notes import clip, note_budget
from tasks.decide.paths import printable
from tasks.decide.plan import RESTORE_HUMAN_CHANGES_HELP, Action, Decision, Plan, Precondition, Skip

PLAYBOOK = "commit-author-triage"
ASSIGN_PRECONDITION = Precondition(statuses=("TRIGGERED",))
# The share follows the assignment in the same run, so the incident may be ASSIGNED by then.
SHARE_PRECONDITION = Precondition(statuses=OPEN_STATUSES)


class CommitAuthorTriagePolicy(BaseModel):
    """Who gets an unassigned incident when nobody has claimed it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    restore_human_changes: bool = Field(False, description=RESTORE_HUMAN_CHANGES_HELP)
    no_member_author: Literal["leave", "codeowners", "least_loaded"] = Field(
        "leave",
        description="When no commit author is an active member: 'leave' the incident unassigned, "
        "give it to the first CODEOWNERS owner of the leaking file who is an active member, or "
        "to the least-loaded member of group_emails (fewest open incidents).",
    )
    group_emails: tuple[str, ...] = Field(
        (),
        description="E-mails of the members who share the leftover incidents under "
        "'least_loaded' (e.g. the security team).",
    )
    send_email: bool = Field(True, description="Let GitGuardian e-mail the new assignee.")
    share_with_non_member_author: bool = Field(
        False,
        description="Also share the incident (a GitGuardian share link, never logged or shown) "
        "when its most recent human author is not a workspace member, so they can help fix it.",
    )
    share_auto_healing: bool = Field(
        False, description="Shared page: let the author resolve the incident themselves."
    )
    share_feedback_collection: bool = Field(
        True, description="Shared page: ask the author for feedback on the leak."
    )
    share_lifespan_hours: int = Field(
        0,
        ge=0,
        le=24 * 365,
        description="Hours the share link stays valid (0: the workspace's default).",
    )

    @field_validator("group_emails", mode="before")
    @classmethod
    def _addresses(cls, value: Any) -> Any:
        values = (value,) if isinstance(value, str) else tuple(value or ())
        addresses = tuple(dict.fromkeys(a for a in (normalise_email(str(v)) for v in values) if a))
        bad = [a for a in addresses if "@" not in a]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(bad)}")
        return addresses

    @model_validator(mode="after")
    def _group_for_least_loaded(self) -> CommitAuthorTriagePolicy:
        if self.no_member_author == "least_loaded" and not self.group_emails:
            raise ValueError("'least_loaded' needs group_emails: the members who share the work")
        return self


@dataclass(frozen=True)
class _Author:
    """One occurrence's author, as resolved for this run."""

    raw: str | None  # as the commit says (untrusted)
    address: str  # normalised, after .mailmap and directory alias
    member: Any | None  # the active member behind it, if they may be assigned
    departed: bool
    known_active: bool  # the directory answered ACTIVE
    bot: bool
    via: str  # how the address was resolved, for the evidence
    # Set when a directory lookup behind this author failed: nobody can tell who they are.
    unknown: Evidence | None = None

    @property
    def human(self) -> bool:
        return not self.bot


class _People:
    """Members, directory and mailmap of the run, keyed by normalised address."""

    def __init__(
        self, members: Iterable[Any], directory: Mapping[str, Lookup], mailmap: Mapping[str, str]
    ):
        self.directory = by_normalised_address(directory)
        self.mailmap = {k: normalise_email(v) for k, v in by_normalised_address(mailmap).items()}
        self.departed_addresses = departed_addresses(self.directory)
        self.members: dict[str, Any] = {}
        for member in sorted(members, key=lambda m: m.id):  # duplicates: lowest id wins
            address = normalise_email(member.email)
            if member.active is True and address and not is_bot_or_noreply(address, member.name):
                self.members.setdefault(address, member)

    def resolve(
        self, raw: str | None, name: str | None = None, *, use_mailmap: bool = True,
        reason: str = AUTHOR_LOOKUP_ERROR,
    ) -> _Author:
        address = normalise_email(raw)
        if is_bot_or_noreply(address, name):
            return _Author(raw, address, None, False, False, True, "")
        via = []
        canonical = self.mailmap.get(address, address) if use_mailmap else address
        if canonical != address:
            via.append(".mailmap")
        if is_bot_or_noreply(canonical):
            return _Author(raw, canonical, None, False, False, True, "")
        lookups = [lk for lk in (self.directory.get(canonical), self.directory.get(address)) if lk]
        primary = canonical
        person = next((lk.person for lk in lookups if lk.person is not None), None)
        if person is not None and normalise_email(person.email) not in ("", canonical):
            primary = normalise_email(person.email)
            via.append("directory alias")
            if self.directory.get(primary):
                lookups.append(self.directory[primary])
        addresses = list(dict.fromkeys((primary, canonical, address)))
        departed = any(
            lk.status is Status.DEPARTED or (lk.person is not None and lk.person.departed)
            for lk in lookups
        ) or any(a in self.departed_addresses for a in addresses)
        member = None
        if not departed:
            member = next((self.members[a] for a in addresses if a in self.members), None)
            if member is not None and normalise_email(member.email) in self.departed_addresses:
                member = None
        known_active = any(lk.status is Status.ACTIVE for lk in lookups)
        unknown = None
        if not departed:  # a known leaver is known; otherwise a failed lookup hides who it is
            failed = next((lk for lk in lookups if lk.status is Status.ERROR), None)
            if failed is not None:
                unknown = from_directory(failed, reason=reason, subject=printable(address, 120))
                member = None
        return _Author(raw, primary, member, departed, known_active, False, " and ".join(via),
                       unknown)


def decide_commit_author_triage(
    incidents: Iterable[Any],
    occurrences_by_incident: Mapping[int, Sequence[Any]],
    members: Iterable[Any],
    directory: Mapping[str, Lookup],
    mailmap: Mapping[str, str],
    policy: CommitAuthorTriagePolicy = CommitAuthorTriagePolicy(),
    *,
    codeowners: Mapping[int, Sequence[str] | Evidence[Sequence[str]]] | None = None,
    open_counts: Mapping[int, int] | None = None,
) -> Plan:
    """Assign each TRIGGERED incident to its most recent member author, else per the policy's
    fallback; optionally share it with a non-member author. Everything else is a Skip."""
    people = _People(members, directory, mailmap)
    codeowners = codeowners or {}
    load: Counter[int] = Counter({k: v for k, v in (open_counts or {}).items()})
    decisions: list[Decision] = []
    skips: list[Skip] = []
    for incident in _by_id(incidents):
        status = _text(incident.status)
        if status != "TRIGGERED":
            skips.append(Skip(incident.id, "not_triggered", f"status is {status}"))
            continue
        if incident.assignee_email or incident.assignee_id:
            skips.append(
                Skip(incident.id, "already_assigned", "the incident already has an assignee")
            )
            continue
        occurrences = _by_recency(_own_occurrences(incident.id, occurrences_by_incident))
        authors = [(o, people.resolve(o.author_info, o.author_name)) for o in occurrences]
        outcome = _choose(incident, occurrences, authors, people, policy, codeowners, load)
        if isinstance(outcome, Decision):
            decisions.append(outcome)
            load[people.members[normalise_email(outcome.arguments["email"])].id] += 1
        else:
            skips.append(outcome)
        # An incident left to the departed-developer playbook is wholly theirs: no share either.
        # Nor on an author nobody could resolve: they may be a member, or may have left.
        no_share = getattr(outcome, "reason", "") in ("author_departed", AUTHOR_LOOKUP_ERROR)
        share = None if no_share else _share(incident, authors, policy)
        if share is not None:
            decisions.append(share)
    return Plan(PLAYBOOK, tuple(decisions), tuple(skips))


def _choose(
    incident: Any,
    occurrences: Sequence[Any],
    authors: Sequence[tuple[Any, _Author]],
    people: _People,
    policy: CommitAuthorTriagePolicy,
    codeowners: Mapping[int, Sequence[str] | Evidence[Sequence[str]]],
    load: Counter[int],
) -> Decision | Skip:
    for occurrence, author in authors:  # most recent first
        if author.unknown is not None:
            # Never an older author instead: this one may be the member, or may have left.
            return author.unknown.skip(
                incident.id, f"The author of occurrence {occurrence.id} cannot be resolved."
            )
        if author.member is not None:
            via = f" (resolved through {author.via})" if author.via else ""
            return _assign(
                incident, author.member, "commit_author", policy,
                f"{author.member.email} is an active workspace member and the author of the most "
                f"recent occurrence by a member (occurrence {occurrence.id}, {_day(occurrence)}, "
                f"commit e-mail {printable(author.raw, 120)}{via}).",
            )
    humans = [a for _, a in authors if a.human]
    if any(a.departed for a in humans) and not any(a.known_active for a in humans):
        return Skip(incident.id, "author_departed", "a commit author left the company: "
                    "left to the departed-developer playbook")
    described = _describe(humans, len(occurrences))
    if policy.no_member_author == "leave":
        return Skip(incident.id, "no_member_author", described)
    expected = incident.occurrences_count
    if expected is None or len(occurrences) < expected:
        return Skip(incident.id, "occurrences_unseen",
                    f"{len(occurrences)} of "
                    f"{expected if expected is not None else 'an unknown number of'} "
                    "occurrences seen: an unseen one could name a member author")
    if policy.no_member_author == "codeowners":
        owners = listed(codeowners.get(incident.id), what="CODEOWNERS owner")
        if owners.is_unknown:
            return owners.skip(incident.id, described)
        for owner in owners.value or ():
            resolved = people.resolve(owner, use_mailmap=False, reason=OWNER_LOOKUP_ERROR)
            if resolved.unknown is not None:
                return resolved.unknown.skip(incident.id, described)
            if resolved.member is not None:
                return _assign(
                    incident, resolved.member, "codeowner", policy,
                    f"{described} {resolved.member.email} is the first CODEOWNERS owner of the "
                    "leaking file who is an active workspace member.",
                )
        return Skip(incident.id, "no_eligible_codeowner",
                    f"{described} No CODEOWNERS owner of the leaking file is an active member.")
    group = {}
    for address in policy.group_emails:
        resolved = people.resolve(address, use_mailmap=False, reason=GROUP_LOOKUP_ERROR)
        if resolved.unknown is not None:  # they might be the least loaded, or have left
            return resolved.unknown.skip(incident.id, described)
        if resolved.member is not None:
            group.setdefault(resolved.member.id, resolved.member)
    if not group:
        return Skip(incident.id, "no_eligible_group_member",
                    f"{described} No member of group_emails is an active workspace member.")
    chosen = min(group.values(), key=lambda m: (load[m.id], normalise_email(m.email), m.id))
    return _assign(
        incident, chosen, "least_loaded", policy,
        f"{described} {chosen.email} has the fewest open incidents in the group "
        f"({load[chosen.id]}, counting this run's assignments).",
    )


def _assign(
    incident: Any, member: Any, reason: str, policy: CommitAuthorTriagePolicy, evidence: str
) -> Decision:
    return Decision(
        PLAYBOOK, incident.id, Action.ASSIGN,
        {"email": member.email, "send_email": policy.send_email},
        reason, evidence, ASSIGN_PRECONDITION,
    )


def _share(
    incident: Any, authors: Sequence[tuple[Any, _Author]], policy: CommitAuthorTriagePolicy
) -> Decision | None:
    if not policy.share_with_non_member_author or getattr(incident, "share_url", None):
        return None
    latest = next((a for _, a in authors if a.human), None)
    if latest is None or latest.member is not None or latest.departed or latest.unknown:
        return None
    if any(a.member is not None for _, a in authors):
        return None  # a member author was chosen: they fix it
    return Decision(
        PLAYBOOK, incident.id, Action.SHARE,
        {
            "auto_healing": policy.share_auto_healing,
            "feedback_collection": policy.share_feedback_collection,
            "lifespan_hours": policy.share_lifespan_hours,
        },
        "non_member_author",
        f"The most recent commit author ({printable(latest.raw, 120)}) is not a workspace member: "
        "the incident is shared so they can help remediate it.",
        SHARE_PRECONDITION,
    )


def _describe(humans: Sequence[_Author], seen: int) -> str:
    if not seen:
        return "No occurrence seen, so no commit author."
    if not humans:
        return "Every commit author is a bot or no-reply address."
    shown = ", ".join(dict.fromkeys(printable(a.address, 120) for a in humans[:5]))
    return f"No commit author is an active workspace member ({shown})."


def _day(occurrence: Any) -> str:
    when = _when(occurrence)
    return when.date().isoformat() if when != _NEVER else "undated"


_NEVER = datetime.min.replace(tzinfo=UTC)


def _when(occurrence: Any) -> datetime:
    value = occurrence.date
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return _NEVER
    if not isinstance(value, datetime):
        return _NEVER
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _by_recency(occurrences: Iterable[Any]) -> list[Any]:
    return sorted(occurrences, key=lambda o: (_when(o), o.id), reverse=True)


def _own_occurrences(
    incident_id: int, occurrences_by_incident: Mapping[int, Sequence[Any]]
) -> list[Any]:
    listed = occurrences_by_incident.get(incident_id, ())
    unique = {o.id: o for o in listed if o.incident_id == incident_id}
    return list(unique.values())


def _by_id(incidents: Iterable[Any]) -> list[Any]:
    unique = {i.id: i for i in incidents}
    return [unique[k] for k in sorted(unique)]


def _text(value: Any) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


NOTE_BUDGET = note_budget(PLAYBOOK)  # the API's 10,000 characters, less the marker


def render_note(decision: Decision) -> str:
    """The note that explains an assignment or a share; the write path appends its marker.
    A share's note never holds the link: the link gives access to the secret."""
    if decision.action is Action.ASSIGN:
        text = f"Assigned to {decision.arguments['email']} by the {PLAYBOOK} playbook. "
    else:
        text = f"Shared with its commit author by the {PLAYBOOK} playbook. "
    return clip(text + decision.evidence, NOTE_BUDGET)
