"""Tri-state evidence: what a lookup that feeds a decision answered. Pure, no I/O.

Every lookup a decision depends on (a directory entry, a manager, a CODEOWNERS listing, a
committer, a fallback) answers one of three ways:
- **yes**: the candidate qualifies; `value` is what was found (a person, a member, a list);
- **no**: the lookup answered and the candidate does not qualify (not in the directory, left,
  not a workspace member, no manager named, no CODEOWNERS rule): the chain may go on;
- **unknown**: the lookup could not tell (an error, a timeout, a truncated or ambiguous answer,
  a lookup that was never made): `reason` is the skip reason, `cause` what went wrong.

The one rule, used by every playbook: walking a chain of candidates, the first unknown stops
the walk and the incident is skipped with that unknown's reason. An unknown is never read as
"not this one", so an incident never goes to a later candidate because an earlier one could not
be checked (`first_yes`).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from clients.directory import Lookup, Person, Status
from tasks.decide.plan import Skip

T = TypeVar("T")

# Skip reasons for an unknown, by what could not be looked up. Stable: plans, the ledger and
# the README name them.
DIRECTORY_ERROR = "directory_error"  # the assignee (departed) or an author (departed)
MANAGER_LOOKUP_ERROR = "manager_lookup_error"  # a manager's entry, or the person's own
OWNER_LOOKUP_ERROR = "owner_lookup_error"  # CODEOWNERS of the leaking file, or an owner's entry
COMMITTER_LOOKUP_ERROR = "committer_lookup_error"  # the file's committers, or one's entry
FALLBACK_LOOKUP_ERROR = "fallback_lookup_error"  # the directory failed on the fallback address
AUTHOR_LOOKUP_ERROR = "author_lookup_error"  # triage: a commit author's entry
GROUP_LOOKUP_ERROR = "group_lookup_error"  # triage least_loaded: a group member's entry
LOOKUP_ERRORS = frozenset({
    DIRECTORY_ERROR, MANAGER_LOOKUP_ERROR, OWNER_LOOKUP_ERROR, COMMITTER_LOOKUP_ERROR,
    FALLBACK_LOOKUP_ERROR, AUTHOR_LOOKUP_ERROR, GROUP_LOOKUP_ERROR,
})


class Answer(str, Enum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class Cause(str, Enum):
    """Why a lookup could not tell."""

    ERROR = "error"
    TIMEOUT = "timeout"
    TRUNCATED = "truncated"
    AMBIGUOUS = "ambiguous"
    MISSING = "missing"  # no answer at all: the lookup was not made or gave nothing back


@dataclass(frozen=True)
class Evidence(Generic[T]):
    answer: Answer
    value: T | None = None
    reason: str = ""  # unknown: the skip reason (MANAGER_LOOKUP_ERROR, ...)
    detail: str = ""  # one human sentence: what was found, or why not
    cause: Cause | None = None  # unknown only

    @classmethod
    def yes(cls, value: T, detail: str = "") -> Evidence[T]:
        return cls(Answer.YES, value, detail=detail)

    @classmethod
    def no(cls, detail: str = "") -> Evidence[T]:
        return cls(Answer.NO, detail=detail)

    @classmethod
    def unknown(cls, reason: str, detail: str, cause: Cause = Cause.ERROR) -> Evidence[T]:
        if not reason:
            raise ValueError("an unknown needs the skip reason it leads to")
        return cls(Answer.UNKNOWN, reason=reason, detail=detail, cause=cause)

    @property
    def is_yes(self) -> bool:
        return self.answer is Answer.YES

    @property
    def is_no(self) -> bool:
        return self.answer is Answer.NO

    @property
    def is_unknown(self) -> bool:
        return self.answer is Answer.UNKNOWN

    def retyped(self) -> Evidence:
        """This unknown (or no) as evidence about something else: the same reason and detail."""
        if self.is_yes:
            raise ValueError("only a no or an unknown carries over to another question")
        return Evidence(self.answer, None, self.reason, self.detail, self.cause)

    def skip(self, incident_id: int, context: str = "") -> Skip:
        """The skip an unknown makes of its incident."""
        if not self.is_unknown:
            raise ValueError("only an unknown makes a lookup-error skip")
        text = f"{context} {self.detail}".strip() if context else self.detail
        return Skip(incident_id, self.reason, f"{text} Nothing is decided on a lookup that "
                                               "could not tell; the next run tries again.")


def first_yes(candidates: Iterable[Evidence[T]]) -> Evidence[T]:
    """The first yes of a chain, in order. The first unknown ends the walk and is returned (a
    lazy `candidates` is not even evaluated further); no when every candidate answered no."""
    for evidence in candidates:
        if not evidence.is_no:
            return evidence
    return Evidence.no("no candidate qualified")


def cause_of(detail: str) -> Cause:
    """The cause behind a failed lookup's detail text (clients/directory.py's wording)."""
    text = detail.casefold()
    if "ambiguous" in text:
        return Cause.AMBIGUOUS
    if "truncated" in text or "size limit" in text:
        return Cause.TRUNCATED
    if "timeout" in text or "timed out" in text:
        return Cause.TIMEOUT
    return Cause.ERROR


def from_directory(lookup: Lookup | None, *, reason: str, subject: str) -> Evidence[Person]:
    """A directory answer as evidence that `subject` is a person still employed here.

    ACTIVE: yes (the person). DEPARTED, or UNKNOWN (the directory knows no such entry): no.
    ERROR (failed, timed out, truncated, ambiguous) or no answer at all: unknown, `reason`."""
    if lookup is None:
        return Evidence.unknown(
            reason, f"The directory gave no answer for {subject}.", Cause.MISSING
        )
    if lookup.status is Status.ERROR:
        detail = f" ({lookup.detail})" if lookup.detail else ""
        return Evidence.unknown(
            reason, f"The directory lookup of {subject} failed{detail}.", cause_of(lookup.detail)
        )
    if lookup.status is Status.UNKNOWN:
        return Evidence.no(f"The directory does not know {subject}.")
    person = lookup.person
    if lookup.status is Status.DEPARTED or (person is not None and person.departed):
        return Evidence.no(f"{subject} left the company.")
    if person is None:  # an ACTIVE answer without its entry: nobody to check
        return Evidence.unknown(
            reason, f"The directory answered for {subject} without an entry.", Cause.MISSING
        )
    return Evidence.yes(person, f"The directory knows {subject} as active.")


def listed(
    value: Sequence[str] | Evidence[Sequence[str]] | None, *, what: str
) -> Evidence[tuple[str, ...]]:
    """A list of candidate addresses (CODEOWNERS owners, committers) as evidence: a plain list
    is an answer (empty: no); an Evidence, as the enrich layer gives it, passes through."""
    if isinstance(value, Evidence):
        if value.is_yes:
            names = tuple(value.value or ())
            return Evidence.yes(names) if names else Evidence.no(f"no {what}")
        return value.retyped()
    names = tuple(value or ())
    return Evidence.yes(names) if names else Evidence.no(f"no {what}")
