"""Notes have a budget (issue 13, item 4): a note template is checked when the policy is made,
by rendering it with the worst-case values against the API's note limit, in bounded time and
memory; the note a playbook writes always fits, marker included."""
from __future__ import annotations

import tracemalloc

import pytest
from pydantic import ValidationError

from sandbox.store import ApiError, Store
from tasks.decide.departed_developers import (
    NOTE_BUDGET,
    PLAYBOOK,
    DepartedDevelopersPolicy,
    render_note,
)
from tasks.decide.notes import LONGEST_ADDRESS, MAX_FORMAT_WIDTH, NOTE_MAX_CHARS, note_text
from tasks.decide.plan import Action, Decision, Precondition


def _reassignment(evidence: str = "Alice left.", old: str = LONGEST_ADDRESS) -> Decision:
    return Decision(
        playbook=PLAYBOOK, incident_id=7, action=Action.ASSIGN,
        arguments={"email": LONGEST_ADDRESS, "send_email": True}, reason="manager",
        evidence=evidence,
        precondition=Precondition(statuses=("ASSIGNED",), assignee_email=old, check_assignee=True),
    )


def _refusal(template: str) -> str:
    with pytest.raises(ValidationError) as caught:
        DepartedDevelopersPolicy(note_template=template)
    return str(caught.value)


def test_the_budget_is_the_limit_the_sandbox_enforces():
    assert Store._check_comment("x" * NOTE_MAX_CHARS)
    with pytest.raises(ApiError):
        Store._check_comment("x" * (NOTE_MAX_CHARS + 1))
    assert len(LONGEST_ADDRESS) == 254
    assert NOTE_MAX_CHARS - 100 < NOTE_BUDGET < NOTE_MAX_CHARS


def test_a_padded_placeholder_that_overflows_the_note_is_refused():
    message = _refusal("{old:x>20000}")
    assert "{old}" in message and str(NOTE_MAX_CHARS) in message


def test_a_huge_width_is_refused_without_allocating_it():
    tracemalloc.start()
    try:
        message = _refusal("{old:>50000000}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # a 50 MB string was never built (memory, not time, shows it)
    assert "{old}" in message and "50000000" in message and str(MAX_FORMAT_WIDTH) in message


@pytest.mark.parametrize("template", ["{reason:.20000}", "{new:020000}", "{old!r:^99999999999}"])
def test_precision_and_zero_padding_are_bounded_too(template):
    assert str(MAX_FORMAT_WIDTH) in _refusal(template)


def test_a_template_too_long_with_the_longest_addresses_is_refused():
    # 240 characters of template, 40 addresses of 254 characters: about 10,400 characters.
    message = _refusal("{old} {new} " * 20)
    assert str(NOTE_BUDGET) in message and str(NOTE_MAX_CHARS) in message
    assert "{old}" in message or "{new}" in message


def test_an_accepted_template_always_yields_a_note_the_api_takes():
    policy = DepartedDevelopersPolicy(
        note_template="From {old:<100} to {new:.100}: {reason} " + "x" * 8000
    )
    decision = _reassignment(evidence="why " * 5_000, old="o" * 400)
    note = note_text(decision, render_note(decision, policy))
    assert len(note) <= NOTE_MAX_CHARS
    assert Store._check_comment(note) == note
    assert note.endswith(f"decision {decision.decision_id}]")


def test_the_default_template_fits_with_a_long_reason():
    decision = _reassignment(evidence="why " * 5_000)
    note = note_text(decision, render_note(decision, DepartedDevelopersPolicy()))
    assert len(note) <= NOTE_MAX_CHARS and LONGEST_ADDRESS in note
