"""What a playbook run shows people: the plan, the outcomes and the summary, as rows and
Markdown a reader takes in at a glance. Pure functions, no Prefect (tasks/playbook.py publishes).

- incident: its id, linked to GitGuardian's dashboard (the incident's `gitguardian_url`);
- action, and **who / what**: the new assignee's e-mail, or what is done in words ("ignored as
  a test credential"), never `member_id: 1253` or raw JSON;
- why: the decision's reason in words;
- evidence: wrapped and cut short (the full text is in the ledger, found by the decision id).

Prefect's UI renders Markdown inside table cells (links, `<br>`), so every value that came from
GitGuardian, the directory or Git is escaped here (`text()`), and only this module writes
markup: the links (http/https only) and the `<br>` that wraps long cells.
"""
from __future__ import annotations

import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from tasks.decide.paths import printable
from tasks.decide.plan import Action, Decision, Outcome, Plan

# Prefect's tables do not wrap cells: these keep a plan's row within about 1,100 px.
EVIDENCE_WIDTH = 60  # characters per line of the evidence column
EVIDENCE_LINES = 3  # then "…": the ledger holds the rest
WHO_WIDTH = 44
WHY_WIDTH = 26
FAILURES_LISTED = 50

# The one Markdown escaper (plans' artifacts here, the weekly report in tasks/report/render.py):
# markup characters backslashed, HTML's three entities, line breaks and tabs as spaces.
_MD = {c: "\\" + c for c in "\\`*_[]|#~"}
_MD.update({"<": "&lt;", ">": "&gt;", "&": "&amp;", "\r": " ", "\n": " ", "\t": " "})
_MD_TABLE = str.maketrans(_MD)


def escape_markdown(text: str) -> str:
    """The text with no Markdown markup, no HTML and no line break left in it."""
    return text.translate(_MD_TABLE)

# A decision's reason code, in words (the codes stay in the ledger and the flow's result).
REASONS = {
    # departed-developer reassignment: where the successor came from
    "manager": "the leaver's manager",
    "codeowner": "CODEOWNERS owner of the leaking file",
    "recent_committer": "most recent committer of the leaking file",
    "fallback": "the policy's fallback assignee",
    # commit-author triage
    "commit_author": "author of the leaking commit",
    "least_loaded": "least-loaded member of the group",
    "non_member_author": "the commit author is not a workspace member",
    # test-directory auto-ignore
    "all_occurrences_in_test_paths": "every occurrence is in a test path",
    "secret_became_valid": "the secret is now valid",
    "occurrence_outside_test_paths": "a new occurrence outside test paths",
    # bulk remediation
    "bulk_assign_manager": "bulk: the assignee's manager",
    "bulk_assign_successor": "bulk: the named successor",
}
IGNORE_REASONS = {
    "test_credential": "a test credential",
    "false_positive": "a false positive",
    "low_risk": "low risk",
}


def text(value: Any) -> str:
    """A value as plain text for a Markdown cell or line: no markup, no HTML, one line,
    control characters shown as escapes."""
    if value is None:
        return ""
    return escape_markdown(printable(" ".join(str(value).split()), limit=10_000))


def safe_url(url: Any) -> str | None:
    """An http(s) URL made safe inside a Markdown link target; None for anything else
    (javascript:, data:, relative, empty)."""
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Percent-encode what would end the link or the cell: spaces, ( ) < > | and quotes.
    return quote(url, safe="/:?#[]@!$&'*+,;=%-._~")


def link(label: Any, url: Any) -> str:
    """`[label](url)` when the URL is a safe http(s) URL, else the label alone (escaped)."""
    target = safe_url(url)
    shown = text(label)
    return f"[{shown}]({target})" if target else shown


def wrap(value: Any, width: int, lines: int | None = None, more: str = "…") -> str:
    """Escaped text wrapped with `<br>` (Prefect's tables do not wrap cells), cut to `lines`
    lines ending with `more`."""
    plain = printable(" ".join(str(value or "").split()), limit=10_000)
    parts = textwrap.wrap(plain, width=width, break_long_words=True) or [""]
    if lines is not None and len(parts) > lines:
        parts = parts[:lines]
        parts[-1] = parts[-1][: max(width - len(more) - 1, 1)].rstrip() + " " + more
    return "<br>".join(escape_markdown(p) for p in parts)


class IncidentLinks:
    """Incident id -> its dashboard URL, from the incidents the plan was made from.

    An incident the run did not list (a recheck's) gets a URL made from a listed one's when
    that one ends in `/incidents/<its id>` (GitGuardian's form), else no link.
    """

    _TAIL = re.compile(r"/incidents/(\d+)/?$")

    def __init__(self, incidents: Iterable[Any] = ()):
        self.urls: dict[int, str] = {}
        for incident in incidents or ():
            url = _field(incident, "gitguardian_url")
            incident_id = _field(incident, "id")
            if incident_id is not None and safe_url(url):
                self.urls[int(incident_id)] = url
        self._pattern = next((u for i, u in self.urls.items()
                              if (m := self._TAIL.search(u)) and m.group(1) == str(i)), None)

    def url(self, incident_id: int) -> str | None:
        if incident_id in self.urls:
            return self.urls[incident_id]
        if self._pattern is not None:
            return self._TAIL.sub(f"/incidents/{int(incident_id)}", self._pattern)
        return None

    def cell(self, incident_id: int) -> str:
        return link(incident_id, self.url(incident_id))


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


# ------------------------------------------------------------------ a decision in words

def reason_words(reason: str) -> str:
    if reason in REASONS:
        return REASONS[reason]
    if reason.startswith("bulk_"):
        return "bulk: " + reason.removeprefix("bulk_").replace("_", " ")
    return reason.replace("_", " ")


def new_assignee(decision: Decision) -> str | None:
    """The e-mail an assign decision gives the incident to (bulk assigns by member id, and
    keeps the e-mail in `shown_assignee`)."""
    if decision.action is not Action.ASSIGN:
        return None
    return decision.arguments.get("email") or decision.shown_assignee or None


def who_what(decision: Decision) -> str:
    """The new assignee's e-mail, or what the write does, in words (plain text, not escaped)."""
    return " ".join(_who_parts(decision))


def _who_parts(decision: Decision) -> list[str]:
    args = decision.arguments
    match decision.action:
        case Action.ASSIGN:
            email = new_assignee(decision)
            parts = [f"to {email or 'member ' + str(args.get('member_id'))}"]
            pre = decision.precondition
            if pre.check_assignee and pre.assignee_email:
                parts.append(f"(was {pre.assignee_email})")
            if not args.get("send_email", True):
                parts.append("(no e-mail sent)")
            return parts
        case Action.UNASSIGN:
            return ["unassigned"]
        case Action.IGNORE:
            why = str(args.get("ignore_reason") or "")
            return [f"ignored as {IGNORE_REASONS.get(why, why.replace('_', ' ') or 'no reason')}"]
        case Action.RESOLVE:
            revoked = args.get("secret_revoked")
            return ["resolved, secret revoked" if revoked else "resolved, secret not revoked"]
        case Action.REOPEN:
            return ["reopened"]
        case Action.SHARE:
            hours = int(args.get("lifespan_hours") or 0)
            life = f"for {hours} h" if hours else "for the workspace's default time"
            return [f"share link for the author, {life}"]
        case Action.NOTE:
            return ["a note"]
    return [decision.action.value]


def _who_cell(decision: Decision) -> str:
    """One part a line (the new assignee first), each wrapped."""
    return "<br>".join(wrap(part, WHO_WIDTH) for part in _who_parts(decision))


def plan_row(decision: Decision, links: IncidentLinks) -> dict[str, str]:
    return {
        "incident": links.cell(decision.incident_id),
        "action": decision.action.value,
        "who / what": _who_cell(decision),
        "why": wrap(reason_words(decision.reason), WHY_WIDTH),
        "evidence": wrap(decision.evidence, EVIDENCE_WIDTH, EVIDENCE_LINES),
        "decision": decision.decision_id,
    }


RESULT_WORDS = {
    "applied": "done",
    "would_apply": "would do (dry run)",
    "already_done": "already done (by an earlier run)",
    "state_changed": "left: the incident changed since the plan",
    "overwrote_human_change": "done, over a change someone made meanwhile",
    "restored_human_change": "put back the person's change",
    "not_claimed": "not written: this run lost its lease",
    "over_limit": "not attempted: above max_actions",
    "failed": "FAILED",
}


def outcome_row(outcome: Outcome, links: IncidentLinks) -> dict[str, str]:
    row = plan_row(outcome.decision, links)
    detail = wrap(outcome.detail, EVIDENCE_WIDTH, EVIDENCE_LINES) if outcome.detail else ""
    return {
        "incident": row["incident"],
        "action": row["action"],
        "who / what": row["who / what"],
        "result": wrap(RESULT_WORDS.get(outcome.result.value, outcome.result.value), WHY_WIDTH),
        "detail": detail,
        "why": row["why"],
        "evidence": row["evidence"],
        "decision": row["decision"],
    }


# ------------------------------------------------------------------ the summary

def _count_table(title: str, counts: Counter[str], column: str) -> list[str]:
    if not counts:
        return []
    lines = [f"**{text(title)}**", "", f"| {column} | count |", "|---|---:|"]
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    lines += [f"| {text(k)} | {n:,} |" for k, n in ordered]
    return lines + [""]


def summary_markdown(report: Any, links: IncidentLinks, *, headline: str) -> str:
    """The run's summary: one line, then counts by action, reason, result and new assignee,
    then every failure (and every write made over someone's change) with its detail."""
    outcomes: list[Outcome] = list(report.outcomes)
    plan: Plan = report.plan
    mode = "dry run, nothing written" if report.dry_run else "run that writes"
    lines = [f"# {text(report.playbook)}: {mode}", "",
             text(headline), ""]
    lines += _count_table("By action", Counter(d.action.value for d in plan.decisions), "action")
    reasons = Counter(reason_words(d.reason) for d in plan.decisions)
    lines += _count_table("By reason", reasons, "reason")
    lines += _count_table("By result", Counter(RESULT_WORDS.get(o.result.value, o.result.value)
                                               for o in outcomes), "result")
    assignees = Counter(a for d in plan.decisions if (a := new_assignee(d)))
    lines += _count_table("By new assignee", assignees, "new assignee")
    if plan.skips:
        lines += _count_table("Left alone, by reason",
                              Counter(s.reason.replace("_", " ") for s in plan.skips), "reason")
    for title, chosen in (("Failed", report.failed), ("Written over a change made meanwhile",
                                                       report.overwrites)):
        if not chosen:
            continue
        lines += [f"## {title} ({len(chosen)})", "",
                  "| incident | action | who / what | detail |", "|---|---|---|---|"]
        for o in chosen[:FAILURES_LISTED]:
            lines.append(f"| {links.cell(o.decision.incident_id)} | {o.decision.action.value} | "
                         f"{text(who_what(o.decision))} | {text(o.detail)} |")
        if len(chosen) > FAILURES_LISTED:
            lines.append(f"\n{len(chosen) - FAILURES_LISTED} more: see the outcomes table.")
        lines.append("")
    if getattr(report, "detection", "") and not report.dry_run:
        lines += [f"After-write check: {text(report.detection)}.", ""]
    return "\n".join(lines)
