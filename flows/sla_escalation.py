"""SLA escalation ladder: chase what is late; tell the owner, then their manager, then security.

fetch (open incidents, members, the occurrences of unassigned ones that are due, reopenings in
the audit log) -> the ledger's earlier rungs -> enrich (directory: owners and their managers)
-> decide (tasks/decide/sla_escalation.py, pure; our stage notes read for the incidents it
would escalate, then decided again) -> act (the one write path: a note per rung, optionally a
reassignment) -> notify (one digest per person and block, tasks/notify.py; failures recorded
and sent again by the next run).
"""
from __future__ import annotations

import sys

if __name__ == "__main__":  # the command line: checked before Prefect loads (flows/cli.py)
    from flows.cli import command_line

    sys.exit(command_line("flows.sla_escalation"))

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow
from prefect.utilities.annotations import quote

from tasks import enrich, fetch, sla
from tasks.decide import sla_escalation as ladder
from tasks.decide.evidence import Evidence
from tasks.decide.identity import is_bot_or_noreply, normalise_email
from tasks.decide.sla_escalation import PLAYBOOK, SlaEscalationPolicy
from tasks.errors import one_line_errors
from tasks.fetch import FETCH
from tasks.playbook import Playbook
from tasks.runtime import create_table_artifact, get_run_logger, run_name, task

SCOPES = ("incidents:read", "incidents:write", "members:read")
REOPENED_EVENT = "secret_incident.reopened"
CLOCK_SLACK = timedelta(days=2)


@task(name="fetch-stage-notes", **FETCH)
def fetch_stage_notes(client: Any, incident_ids: Sequence[int]) -> dict[int, Evidence]:
    """Our stage notes' tags, per incident (one filtered listing each); a listing that fails is
    an unknown for that incident only."""
    from tasks.act import error_detail

    found: dict[int, Evidence] = {}
    for incident_id in incident_ids:
        try:
            records = []
            for note in client.notes(incident_id, per_page=100,
                                     search="gg-remediation sla-escalation"):
                at = note.created_at or datetime.now(UTC)
                records += ladder.records_from_note(incident_id, note.comment, at)
            found[incident_id] = Evidence.yes(records)
        except Exception as exc:  # noqa: BLE001 - that incident is skipped, with the reason
            found[incident_id] = ladder.unknown_notes(
                f"The notes of incident {incident_id} could not be read ({error_detail(exc)}).")
    return found


@task(name="fetch-reopenings", **FETCH)
def fetch_reopenings(client: Any, since: datetime | None) -> dict[int, datetime] | None:
    """Each incident's latest reopening since `since` (the audit log); None when unreadable."""
    if since is None:
        return {}
    try:
        latest: dict[int, datetime] = {}
        for page in client.audit_logs(per_page=100, event_name=REOPENED_EVENT,
                                      date_after=since).pages():
            for entry in page:
                if entry.event_name != REOPENED_EVENT:
                    continue
                for target in entry.target_ids or ():
                    if str(target).isdigit():
                        key = int(target)
                        latest[key] = max(latest.get(key, entry.date), entry.date)
        return latest
    except Exception:  # noqa: BLE001 - no audit_logs:read, or the log is down: said in the run
        return None


def stage_history(ledger: Any) -> tuple[dict[int, list[ladder.StageRecord]],
                                        list[tuple[str, int, dict[str, Any]]]]:
    """Rungs this playbook's real runs did (by incident), and the same as (decision id,
    incident id, arguments) for the digests."""
    history: dict[int, list[ladder.StageRecord]] = defaultdict(list)
    done = []
    for applied in ledger.applied(PLAYBOOK):
        record = ladder.record_from_decision(applied.incident_id, applied.arguments, applied.at)
        if record is not None:
            history[applied.incident_id].append(record)
            done.append((applied.decision_id, applied.incident_id, applied.arguments))
    return dict(history), done


def current_items(done: Iterable[tuple[str, int, Mapping[str, Any]]],
                  history: Mapping[int, Sequence[ladder.StageRecord]],
                  incidents: Mapping[int, Any], now: datetime) -> list[ladder.DigestItem]:
    """Digest items of rungs done in each incident's latest cycle, its highest rung only."""
    top: dict[int, tuple[int, float]] = {}
    for records in history.values():
        for r in records:
            key = (r.cycle, ladder.rung_order(r.rung))
            top[r.incident_id] = max(top.get(r.incident_id, key), key)
    wanted = [(d, i, a) for d, i, a in done
              if (a.get("cycle"), ladder.rung_order(str(a.get("sla_stage")))) == top.get(i)]
    return ladder.digest_items(wanted, incidents, now)


@flow(name=PLAYBOOK, flow_run_name=run_name, log_prints=True)
@one_line_errors
def sla_escalation(
    policy: SlaEscalationPolicy = SlaEscalationPolicy(),
    dry_run: bool = True,
    max_actions: int = 50,
    approval_timeout_hours: float = 24.0,
    now: datetime | None = None,
) -> Any:
    """Chase open incidents against their SLA: tell the owner, then the manager, then security.

    Args:
        policy: Thresholds, whom to tell, quiet hours, the notification blocks.
        dry_run: On: show the plan and the digests it would send (files in the policy's
            outbox), write and send nothing (the default). Off: this run writes the stage
            notes to GitGuardian and sends the digests.
        max_actions: The most writes (stage notes) this run may make. A larger plan pauses
            for approval when the run comes from a deployment, and fails otherwise.
        approval_timeout_hours: How long a run started from a deployment waits, suspended,
            for a person to approve or decline a plan above max_actions (default 24 hours).
            Unanswered by then, it ends Cancelled and writes nothing.
        now: The time the SLA clocks are read at (default: now); for tests and replays.
    """
    logger = get_run_logger()
    now = now or datetime.now(UTC)
    with Playbook(PLAYBOOK, scopes=SCOPES, dry_run=dry_run, max_actions=max_actions,
                  parameters={"policy": policy.model_dump(mode="json")}, policy=policy,
                  approval_timeout_hours=approval_timeout_hours) as run:
        client = run.client
        members = fetch.fetch_members(client)
        incidents = (fetch.fetch_incidents(client, status="ASSIGNED")
                     + fetch.fetch_incidents(client, status="TRIGGERED"))
        by_id = {i.id: i for i in incidents}
        due = {i.id: rung for i in incidents if (rung := _due(i, now, policy))}
        logger.info("%d open incidents, %d at a rung of the ladder", len(incidents), len(due))

        unassigned = sorted(i for i in due if not normalise_email(by_id[i].assignee_email))
        occurrences = fetch.fetch_occurrences_of(client, unassigned) if unassigned else {}
        history, done = stage_history(run.ledger)
        since = min((r.at for rs in history.values() for r in rs), default=None)
        # Two days of slack: the audit log is dated by GitGuardian's clock, the ledger by ours.
        reopened = fetch_reopenings(client, since and since - CLOCK_SLACK)
        if reopened is None:
            logger.warning("the audit log could not be read (audit_logs:read?): reopened "
                           "incidents are not seen, their ladder goes on where it was")
            reopened = {}
        # A reopened incident's stage notes date its last rung in GitGuardian's clock.
        again = sorted(i for i in reopened if i in history and i in by_id)
        for incident_id, found in fetch_stage_notes(client, again).items():
            if found.is_yes:
                history[incident_id] = list(history[incident_id]) + list(found.value or ())

        owners = {normalise_email(by_id[i].assignee_email) for i in due} - {""}
        owners |= {normalise_email(o.author_info) for occ in occurrences.values() for o in occ
                   if o.author_info and not is_bot_or_noreply(o.author_info, o.author_name)}
        directory = enrich.directory_from_settings()  # unreachable: the run ends, nothing written
        lookups = enrich.lookup_people(directory, owners)
        breached = {normalise_email(by_id[i].assignee_email) for i, r in due.items()
                    if r == ladder.BREACHED} - {""}
        breached |= {normalise_email(o.author_info) for i in unassigned
                     if due[i] == ladder.BREACHED for o in occurrences.get(i, ())
                     if o.author_info}
        managers = enrich.owner_manager_chains(directory, quote(lookups), sorted(breached),
                                               policy.manager_depth)
        # Members are matched to the directory's answers by e-mail: a manager's aliases too.
        manager_addresses = {normalise_email(step.person.email) for chain in managers.values()
                             for step in chain if step.person is not None}
        if manager_addresses - set(lookups):
            lookups = {**lookups, **enrich.lookup_people(directory, manager_addresses
                                                         - set(lookups), mid_run=True)}

        inputs = dict(now=now, history=history, directory=lookups, managers=managers,
                      members=members, occurrences_by_incident=occurrences, reopened=reopened,
                      policy=policy)
        first = ladder.decide_sla_escalation(incidents, **inputs)
        # Our notes say which rungs were done even where this ledger does not (another ledger,
        # a lost one): read them for the incidents about to be escalated, then decide again.
        noted = fetch_stage_notes(client, sorted({d.incident_id for d in first.decisions}))
        plan = ladder.decide_sla_escalation(incidents, noted=noted, **inputs)
        result = run.execute(plan, note=ladder.render_note, incidents=incidents)

        report = _notify(run, plan, by_id, now, policy, dry_run)
        data = result.data if hasattr(result, "data") else result
        if isinstance(data, dict):
            data["notifications"] = [d.row() for d in report.deliveries]
            data["summary"] = f"{data.get('summary', '')}; {report.summary()}"
        return result


def _due(incident: Any, now: datetime, policy: SlaEscalationPolicy) -> str | None:
    days = sla.sla_days(str(incident.severity or "unknown"))
    if days is None or incident.date is None:
        return None
    return ladder.due_rung(incident.date, now, days, policy)


def _notify(run: Playbook, plan: Any, by_id: Mapping[int, Any], now: datetime,
            policy: SlaEscalationPolicy, dry_run: bool) -> Any:
    """The digests of what is done (a dry run: of what it would do), through the blocks."""
    from tasks import notify

    logger = get_run_logger()
    if ladder.quiet_now(now, policy):
        logger.info("quiet time: no digest is sent now, they wait for the next working hour")
        return notify.DeliveryReport()
    history, done = stage_history(run.ledger)
    if dry_run:  # what it would do, as if applied now
        for decision in plan.decisions:
            record = ladder.record_from_decision(decision.incident_id, decision.arguments, now)
            history.setdefault(decision.incident_id, []).append(record)
            done.append((decision.decision_id, decision.incident_id, decision.arguments))
    items = current_items(done, history, by_id, now)
    messages = ladder.plan_messages(items, run.ledger.delivered(PLAYBOOK), policy)
    report = notify.deliver(
        messages, ledger=run.ledger, run_id=run.run_id, playbook=PLAYBOOK, dry_run=dry_run,
        outbox_dir=policy.outbox_dir, stamp=now.strftime("%Y%m%dT%H%M%SZ"),
        allow_private_urls=policy.allow_private_urls, email_from=policy.email_from)
    rows = [d.row() for d in report.deliveries] or [{"recipient": None, "status": "none"}]
    create_table_artifact(key=f"{PLAYBOOK}-notifications", table=rows,
                          description=report.summary())
    logger.info(report.summary())
    return report


def main(argv: list[str] | None = None) -> int:
    from flows.cli import command_line

    return command_line("flows.sla_escalation", argv)
