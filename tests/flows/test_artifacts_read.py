"""The plan, outcomes and summary artifacts as people read them (tasks/artifacts.py): incidents
linked to GitGuardian, who receives each incident by e-mail (never a member id or JSON), the
reason in words, short wrapped evidence, the result, and a summary with counts and failures.
Prefect's UI renders Markdown inside table cells, so hostile values must come out as text."""
from __future__ import annotations

import re

from tasks import artifacts
from tasks.act import RunReport
from tasks.decide.bulk_remediation import BulkRequest, decide_bulk_remediation
from tasks.decide.plan import Action, Decision, Outcome, Plan, Precondition, Result
from tests.fixtures.factories import incident, member

URL = "https://dashboard.gitguardian.com/workspace/7/incidents/{}"
SCRIPT = "<script>alert(1)</script>"
LONG = ("Bob Leaver (bob@corp.example) left on 2026-11-02 per the directory (leavers OU). "
        "His manager carol@corp.example is an active workspace member and takes the incident; "
        "the CODEOWNERS owner and the recent committers were not needed. " * 3)


def assign(incident_id=101, evidence=LONG, **arguments):
    return Decision("departed-developer-reassignment", incident_id, Action.ASSIGN,
                    {"email": "carol@corp.example", "send_email": True, **arguments}, "manager",
                    evidence, Precondition(("ASSIGNED",), "bob@corp.example", True))


def links(*ids):
    return artifacts.IncidentLinks([{"id": i, "gitguardian_url": URL.format(i)} for i in ids])


def test_plan_row_names_the_new_assignee_and_links_the_incident():
    row = artifacts.plan_row(assign(), links(101))
    assert row["incident"] == f"[101]({URL.format(101)})"
    assert row["action"] == "assign"
    assert row["who / what"] == "to carol@corp.example<br>(was bob@corp.example)"
    assert row["why"] == "the leaver's manager"
    assert row["decision"] == assign().decision_id  # the ledger row with the full evidence
    lines = row["evidence"].split("<br>")
    assert len(lines) == artifacts.EVIDENCE_LINES and lines[-1].endswith("…")
    assert all(len(line) <= artifacts.EVIDENCE_WIDTH for line in lines)
    assert len(row["evidence"]) < len(LONG) / 2


def test_bulk_assign_by_member_id_shows_the_e_mail():
    request = BulkRequest.model_validate({
        "selection": {"status": ["ASSIGNED"], "assignee_emails": ["leaver@corp.example"]},
        "action": {"kind": "assign", "assignee_email": "successor@corp.example"},
        "reason": "Offboarding",
    })
    leaving = incident(7, status="ASSIGNED", assignee_email="leaver@corp.example", assignee_id=3)
    plan = decide_bulk_remediation([leaving], {}, request,
                       members=[member(1253, "successor@corp.example")])
    (decision,) = plan.decisions
    assert decision.arguments["member_id"] == 1253  # the write still goes by member id
    row = artifacts.plan_row(decision, links())
    assert row["who / what"] == ("to successor@corp.example<br>(was leaver@corp.example)"
                                 "<br>(no e-mail sent)")
    assert row["why"] == "bulk: the named successor"
    cells = " ".join(row.values())
    assert "1253" not in cells and "{" not in cells and "member_id" not in cells


def test_other_actions_in_words():
    def d(action, arguments, reason):
        return Decision("p", 1, action, arguments, reason, "e")

    assert artifacts.who_what(d(Action.IGNORE, {"ignore_reason": "test_credential"},
                                "all_occurrences_in_test_paths")) == "ignored as a test credential"
    assert artifacts.who_what(d(Action.RESOLVE, {"secret_revoked": True}, "bulk_resolve")) \
        == "resolved, secret revoked"
    assert artifacts.who_what(d(Action.REOPEN, {}, "secret_became_valid")) == "reopened"
    assert artifacts.who_what(d(Action.SHARE, {"lifespan_hours": 24}, "non_member_author")) \
        == "share link for the author, for 24 h"
    assert artifacts.who_what(d(Action.ASSIGN, {"email": "a@x.example", "send_email": False},
                                "commit_author")) == "to a@x.example (no e-mail sent)"
    assert artifacts.reason_words("secret_became_valid") == "the secret is now valid"
    assert artifacts.reason_words("some_new_code") == "some new code"


def test_hostile_values_come_out_as_text():
    evil = f"{SCRIPT} | [click](javascript:alert(2)) **bold** `code`\n# heading"
    decision = Decision("p", 5, Action.ASSIGN, {"email": f"x|{SCRIPT}@corp.example"}, "manager",
                        evil)
    hostile = artifacts.IncidentLinks([{"id": 5, "gitguardian_url": "javascript:alert(3)"}])
    row = artifacts.plan_row(decision, hostile)
    cells = " ".join(row.values())
    assert row["incident"] == "5"  # not a link: not http(s)
    assert "<script" not in cells and "javascript:alert(3)" not in cells
    assert "&lt;script&gt;" in cells and "\\[click\\]" in cells and "\\*\\*bold" in cells
    assert not re.search(r"(?<!\\)\|", cells)  # no pipe that could split a Markdown table
    # Only our own markup: the wrapping <br>.
    assert set(re.findall(r"<(\w+)", cells)) <= {"br"}


def test_links_for_incidents_the_run_did_not_list():
    known = links(101)
    assert known.url(202) == URL.format(202)  # made from a listed one's URL
    assert artifacts.IncidentLinks([]).cell(202) == "202"
    odd = artifacts.IncidentLinks([{"id": 1, "gitguardian_url": "https://gg.example/x?y=1"}])
    assert odd.url(2) is None


def test_outcomes_and_summary():
    first, second = assign(101, "short"), assign(102, "short")
    share = Decision("commit-author-triage", 103, Action.SHARE, {"lifespan_hours": 0},
                     "non_member_author", "author not a member")
    plan = Plan("departed-developer-reassignment", (first, second, share))
    report = RunReport(plan.playbook, False, plan, outcomes=[
        Outcome(first, Result.APPLIED),
        Outcome(second, Result.FAILED, f"403 Forbidden {SCRIPT}"),
        Outcome(share, Result.STATE_CHANGED, "now RESOLVED, assignee none"),
    ])
    rows = [artifacts.outcome_row(o, links(101, 102, 103)) for o in report.outcomes]
    assert [r["result"] for r in rows] == ["done", "FAILED",
                                          "left: the incident changed<br>since the plan"]
    assert rows[0]["who / what"] == "to carol@corp.example<br>(was bob@corp.example)"
    assert rows[1]["detail"] == "403 Forbidden &lt;script&gt;alert(1)&lt;/script&gt;"
    assert list(rows[0])[:4] == ["incident", "action", "who / what", "result"]

    text = artifacts.summary_markdown(report, links(101, 102, 103), headline=report.summary())
    assert text.startswith("# departed-developer-reassignment: run that writes")
    assert "| assign | 2 |" in text and "| share | 1 |" in text  # by action
    assert "| the leaver's manager | 2 |" in text  # by reason, in words
    assert "| done | 1 |" in text and "| FAILED | 1 |" in text  # by result
    assert "| carol@corp.example | 2 |" in text  # by new assignee
    assert "## Failed (1)" in text
    assert (f"| [102]({URL.format(102)}) | assign | to carol@corp.example (was bob@corp.example) "
            "| 403 Forbidden &lt;script&gt;alert(1)&lt;/script&gt; |") in text
    assert "<script" not in text
