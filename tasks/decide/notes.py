"""The note budget: how much text a playbook's note may hold, and templates checked against it.

The API refuses a note longer than `NOTE_MAX_CHARS` (10,000 characters, clients/models.py); the
write path (tasks/act.py) appends a blank line and its marker (`NOTE_MARKER`, `note_text` here)
to every note. A note that does
not fit is refused (400) after the write it explains has landed, so a user-supplied template is
checked when the policy is made: rendered with the worst-case values (the longest e-mail address
the standards allow, the longest reason the playbook writes), in bounded time and memory.
"""
from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from clients.models import NOTE_MAX_CHARS
from tasks.decide.plan import Decision

NOTE_MARKER = "[gg-remediation {playbook} decision {decision_id}]"

# RFC 5321: a forward path holds at most 256 characters, the address inside it at most 254.
LONGEST_ADDRESS = "a" * 64 + "@" + "b" * 189
# A width or precision above this in a template's format spec is refused before rendering.
MAX_FORMAT_WIDTH = 100
_DECISION_ID = "f" * 16  # Decision.decision_id: 16 hex digits
_SEPARATOR = "\n\n"  # note_text: text, blank line, marker


def marker(decision: Decision) -> str:
    """The tag the write path puts at the end of each note it writes (how it finds its notes)."""
    return NOTE_MARKER.format(playbook=decision.playbook, decision_id=decision.decision_id)


def note_text(decision: Decision, body: str | None = None) -> str:
    """A note as written: its text (the decision's evidence by default), then the marker."""
    text = body if body is not None else f"{decision.evidence}"
    return f"{text.strip()}{_SEPARATOR}{marker(decision)}"


def note_budget(playbook: str) -> int:
    """How many characters of text a note of this playbook may hold before its marker."""
    marker = NOTE_MARKER.format(playbook=playbook, decision_id=_DECISION_ID)
    return NOTE_MAX_CHARS - len(_SEPARATOR) - len(marker)


def clip(text: str, limit: int) -> str:
    """The text, cut to at most `limit` characters (with an ellipsis when cut)."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _widths(spec: str) -> list[int]:
    """Every run of digits in a format spec: its width and precision (and a digit fill)."""
    runs, digits = [], ""
    for char in spec + " ":
        if char.isdigit():
            digits += char
        elif digits:
            runs.append(int(digits) if len(digits) <= 6 else 10**6)  # no big-int parsing
            digits = ""
    return runs


def check_template(
    name: str,
    template: str,
    worst: Mapping[str, str],
    budget: int,
    *,
    allowed: Iterable[str] | None = None,
) -> str:
    """The template, if it renders within `budget` characters with the `worst` values.

    Refused (ValueError naming the limit and the placeholder): unknown placeholders, nested
    fields in a format spec, a width or precision above MAX_FORMAT_WIDTH (checked before any
    rendering, so "{old:>50000000}" allocates nothing), and a template whose worst-case
    rendering is longer than the budget. Rendering stops as soon as the budget is passed.
    """
    allowed = frozenset(worst if allowed is None else allowed)
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{name} is not a valid template: {exc}") from None
    # Exact names only: "{old.__class__}", "{0}" or "{}" would reach into objects or args.
    unknown = sorted({f or "{}" for _, f, _, _ in parts if f is not None} - allowed)
    if unknown:
        raise ValueError(
            f"{name} has unknown placeholder(s) {', '.join(unknown)}; use only "
            + ", ".join(f"{{{p}}}" for p in sorted(allowed))
        )
    for _, field, spec, _ in parts:
        if field is None or not spec:
            continue
        if "{" in spec or "}" in spec:
            raise ValueError(f"{name}: the format of {{{field}}} may not hold another field")
        widest = max(_widths(spec), default=0)
        if widest > MAX_FORMAT_WIDTH:
            raise ValueError(
                f"{name}: {{{field}}} asks for a width of {widest} characters; at most "
                f"{MAX_FORMAT_WIDTH} are allowed (a note holds at most {NOTE_MAX_CHARS} "
                "characters)"
            )
    formatter = string.Formatter()
    length = 0
    for literal, field, spec, conversion in parts:
        length += len(literal)
        if field is not None:
            try:
                value = formatter.convert_field(worst[field], conversion)
                length += len(formatter.format_field(value, spec or ""))
            except (ValueError, TypeError) as exc:  # e.g. a format spec like {old:>x}
                raise ValueError(f"{name} cannot be rendered: {{{field}}}: {exc}") from None
        if length > budget:
            culprit = f"{{{field}}}" if field is not None else "its text"
            raise ValueError(
                f"{name} is too long for a note: with the longest values ({_described(worst)}) "
                f"it passes {budget} characters at {culprit}; the API takes at most "
                f"{NOTE_MAX_CHARS} characters per note, the marker included"
            )
    return template


def _described(worst: Mapping[str, str]) -> str:
    return ", ".join(f"{{{k}}} {len(v)} characters" for k, v in sorted(worst.items()))
