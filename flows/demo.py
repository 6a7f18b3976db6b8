"""The demo: the whole product on the embedded sandbox, in Prefect's local mode.

`make demo` (or `python -m flows.demo`) starts the sandbox GitGuardian API on a free loopback port
with a seeded workspace, exports its directory and git repositories to `data/demo/`, lists the
incidents through the client, then runs each playbook as a dry run, applies it, runs the weekly
report, and prints what happened and where to look. No account, no token, no server to start.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def say(message: str = "") -> None:
    print(message, flush=True)


def _environment(box: Any, out: Path) -> None:
    """Point every adapter at the sandbox and its exports, as an operator would with env vars."""
    from sandbox.export import environment

    os.environ.update(environment(out, url=box.url, key=box.token, ledger=out / "ledger.sqlite"))
    os.environ.pop("LDAP_URL", None)


def _list_incidents(box: Any) -> None:
    from clients.gitguardian import GitGuardianClient

    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    by_status: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    for page in client.incidents(per_page=100).pages():
        for incident in page:
            by_status[incident.status] += 1
            by_severity[incident.severity] += 1
    total = sum(by_status.values())
    say(f"  {total} incidents listed through the client in {client.requests_total} requests")
    say("  by status:   " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())))
    say("  by severity: " + ", ".join(f"{k} {v}" for k, v in by_severity.most_common()))


FAILED: list[str] = []  # the steps of this demo run that failed


def _run(title: str, flow_fn: Any, **parameters: Any) -> dict[str, Any]:
    """One flow run; a failed one is said in one line (no traceback) and counted in FAILED."""
    started = time.monotonic()
    state = flow_fn(return_state=True, **parameters)
    data = state.result(raise_on_failure=False)
    elapsed = time.monotonic() - started
    if isinstance(data, BaseException):
        FAILED.append(title)
        say(f"  {title}: FAILED after {elapsed:.1f}s: {type(data).__name__}: {data}")
        return {}
    summary = data.get("summary") or f"week {data.get('week')}, {len(data.get('files', {}))} files"
    if state.is_failed():
        FAILED.append(title)
        say(f"  {title}: FAILED after {elapsed:.1f}s: {summary}")
        return data
    say(f"  {title} ({elapsed:.1f}s): {summary}")
    return data


def _fresh(out: Path) -> None:
    """A new ledger and report folder for this demo run: the sandbox is new each time, so an
    earlier demo's ledger would count writes this sandbox never saw."""
    import shutil

    for path in out.glob("ledger.sqlite*"):
        path.unlink()
    shutil.rmtree(out / "reports", ignore_errors=True)


def _writes_in_audit_log(box: Any) -> Counter[str]:
    """The writes the demo's token made, by the sandbox's audit log (notes aside)."""
    from clients.gitguardian import GitGuardianClient
    from sandbox.store import audit_write

    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    token_id = client.token_info().id
    writes: Counter[str] = Counter()
    for page in client.audit_logs(api_token_id=token_id).pages():
        for entry in page:
            found = audit_write(entry.model_dump(mode="json"))
            if found and not found[0].startswith("note_"):
                writes[found[0]] += 1
    return writes


def _writes_in_report(data: dict[str, Any]) -> Counter[str]:
    """The applied writes of the report's automation table (this week)."""
    import json

    path = (data.get("files") or {}).get("kpis.json")
    if not path:
        return Counter()
    rows = json.loads(Path(path).read_text(encoding="utf-8"))["kpis"].get("automation_actions", [])
    return Counter({key: n for key, n in _sum_rows(rows).items() if n})


def _sum_rows(rows: list[dict[str, Any]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for row in rows:
        if row.get("result") == "applied" and row.get("action") != "note":
            total[str(row["action"])] += int(row.get("count") or 0)
    return total


def _hint(module: str) -> str:
    """`.venv/bin/python -m <module>`, as it runs from the repository root."""
    python = Path(sys.executable)
    try:
        python = python.relative_to(ROOT)
    except ValueError:
        pass
    return f"{python} -m {module}"


def _playbooks() -> list[tuple[str, Any, Any]]:
    """(label, flow, default policy) for each playbook present."""
    found = []
    from flows.departed_developers import departed_developers
    from tasks.decide.departed_developers import DepartedDevelopersPolicy

    found.append(
        ("departed-developer reassignment", departed_developers, DepartedDevelopersPolicy())
    )
    try:
        from flows.auto_ignore import auto_ignore
        from tasks.decide.auto_ignore import AutoIgnorePolicy

        found.append(
            ("test-directory auto-ignore", auto_ignore, AutoIgnorePolicy())
        )
    except ImportError:
        pass
    try:
        from flows.commit_author_triage import commit_author_triage
        from tasks.decide.commit_author_triage import CommitAuthorTriagePolicy

        found.append(("commit-author triage", commit_author_triage, CommitAuthorTriagePolicy()))
    except ImportError:
        pass
    return found


def _sla_escalation(args: Any) -> None:
    """The SLA ladder: a dry run, then applied; its digests written as files (no webhook)."""
    from flows.sla_escalation import sla_escalation
    from tasks.decide.sla_escalation import SlaEscalationPolicy

    outbox = args.out / "digests"
    import shutil

    shutil.rmtree(outbox, ignore_errors=True)
    # The demo runs at any hour: no quiet hours or weekends here (the deployment keeps them).
    policy = SlaEscalationPolicy(
        outbox_dir=str(outbox),
        quiet_weekends=False,
        quiet_hours_start="00:00",
        quiet_hours_end="00:00",
    )
    say("   SLA escalation ladder (owner, manager, security), digests to files only...")
    limits = {} if args.max_actions is None else {"max_actions": args.max_actions}
    dry = _run(
        "sla escalation, dry run",
        sla_escalation,
        policy=policy,
        dry_run=True,
        **{"max_actions": 10_000, **limits},
    )
    limit = args.max_actions if args.max_actions is not None else len(dry.get("plan") or ())
    done = _run(
        "sla escalation, applied", sla_escalation, policy=policy, dry_run=False, max_actions=limit
    )
    stages = Counter(row["reason"] for row in done.get("plan") or ())
    say("  stages applied: " + (", ".join(f"{k} {v}" for k, v in sorted(stages.items())) or "none"))
    files = sorted((outbox / "sent").rglob("*.txt")) if (outbox / "sent").exists() else []
    say(
        f"  {len(files)} digest(s) written to {outbox / 'sent'} (what the dry run would send: "
        f"{outbox / 'dry-run'})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=7,
        help="the generated workspace's seed (default 7): same seed, same workspace",
    )
    parser.add_argument(
        "--incidents",
        type=int,
        default=2000,
        help="how many incidents the sandbox generates (default 2000)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "data" / "demo",
        help="where the directory export, git repositories, ledger and report go "
        "(default data/demo/; the ledger and report are made new each demo run)",
    )
    parser.add_argument(
        "--max-actions",
        type=int,
        default=None,
        help="each real run's blast-radius limit (default: the size of its dry "
        "run's plan, so every step applies what it planned)",
    )
    parser.add_argument(
        "--keep-serving",
        action="store_true",
        help="afterwards, keep the sandbox and a local Prefect server with its UI up, "
        "serving every deployment of prefect.yaml against the sandbox (Ctrl-C stops)",
    )
    parser.add_argument(
        "--ui-port",
        type=int,
        default=4200,
        help="the local Prefect server's port with --keep-serving (default 4200)",
    )
    parser.add_argument("--token", help="the sandbox's full-scope API key (default: made up now)")
    parser.add_argument(
        "--events",
        action="store_true",
        help="show the event path instead: a local Prefect server, the webhook "
        "receiver and the served deployments; a new incident in the sandbox, the "
        "triage run its webhook triggered, the incident assigned",
    )
    args = parser.parse_args(argv)
    FAILED.clear()

    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    # INFO reaches the runs' logs (the UI shows each run's progress and steps); the console
    # shows warnings only, the demo's own lines say what happens.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's local server gets 20 s to start by default: too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if args.events:
        return _events_demo(args)

    server = _start_prefect_server(args.ui_port) if args.keep_serving else None

    import sandbox
    from sandbox.export import export

    say(
        f"1. Starting the sandbox GitGuardian API (seed {args.seed}, {args.incidents} incidents)..."
    )
    with sandbox.running(seed=args.seed, incidents=args.incidents, token=args.token) as box:
        say(f"  serving at {box.url}")
        args.out.mkdir(parents=True, exist_ok=True)
        _fresh(args.out)
        export(box.workspace, args.out)
        say(f"  directory and git repositories exported to {args.out}")
        _environment(box, args.out)

        say("2. Listing its incidents through the client...")
        _list_incidents(box)

        say("3. Running each playbook: a dry run (the plan), then for real (Prefect local mode)...")
        results = {}
        for label, flow_fn, policy in _playbooks():
            limits = {} if args.max_actions is None else {"max_actions": args.max_actions}
            dry = _run(f"{label}, dry run", flow_fn, policy=policy, dry_run=True, **limits)
            limit = args.max_actions if args.max_actions is not None else len(dry.get("plan") or ())
            results[label] = _run(
                f"{label}, applied", flow_fn, policy=policy, dry_run=False, max_actions=limit
            )

        _sla_escalation(args)

        try:
            from flows.weekly_report import weekly_report
        except ImportError:
            weekly_report = None
        report_file = None
        if weekly_report is not None:
            # The current, partial week: the automation section shows what the playbooks just did.
            from datetime import datetime

            year, week, _ = datetime.now(UTC).isocalendar()
            say(f"4. Writing the weekly report of this week so far ({year}-W{week:02d})...")
            data = _run(
                "weekly report",
                weekly_report,
                week=f"{year}-W{week:02d}",
                output_dir=str(args.out / "reports"),
            )
            report_file = (data.get("files") or {}).get("report.html") if data else None
            if data:
                audit, reported = _writes_in_audit_log(box), _writes_in_report(data)
                say("  writes of this demo, by the sandbox's audit log: " + _counts(audit))
                say("  writes of this demo, by the report's automation table: " + _counts(reported))
                if audit != reported:
                    FAILED.append("report against the audit log")
                    say("  FAILED: the report's automation figures differ from the audit log")

        if server is not None:  # the sandbox stays up while the deployments are served
            say()
            say("To run a playbook's command line against this sandbox, in another shell:")
            # The sandbox's key is made up for this demo run (or given with --token): it opens
            # only this loopback sandbox, which stops with the demo.
            for name in (
                "GITGUARDIAN_API_URL",
                "GITGUARDIAN_API_KEY",
                "DIRECTORY_JSON",
                "LDAP_BASE_DN",
                "LDAP_LEAVERS_OU",
                "GIT_MIRRORS_ROOT",
                "LEDGER_URL",
            ):
                say(f"  export {name}={os.environ[name]}")
            say(
                "  export GITGUARDIAN_REQUESTS_PER_MINUTE=0 "
                f"PREFECT_API_URL={os.environ['PREFECT_API_URL']}"
            )
            say(f"  {_hint('flows.departed_developers')} --dry-run")
            _keep_serving(args.ui_port, server)

    say()
    if FAILED:
        say(f"{len(FAILED)} step(s) FAILED: {', '.join(FAILED)}. Where to look:")
    else:
        say("Done. Where to look next:")
    say(f"  - the audit ledger of every decision and write: {args.out / 'ledger.sqlite'}")
    if report_file:
        say(f"  - the weekly report: {report_file}")
    home = os.environ["PREFECT_HOME"]
    say(
        f"  - the flow runs and their plan/outcome artifacts: `PREFECT_HOME={home} "
        ".venv/bin/prefect server start`,"
    )
    say(
        "    then http://127.0.0.1:4200 "
        "(this demo used Prefect's local mode with that PREFECT_HOME)"
    )
    say(f"  - each playbook's options: {_hint('flows.departed_developers')} --help")
    return 1 if FAILED else 0


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{action} {n}" for action, n in sorted(counts.items())) or "none"


def _start_prefect_server(port: int) -> Any:
    """A local Prefect server with the UI, so the demo's runs and artifacts stay visible."""
    import subprocess
    import urllib.request

    url = f"http://127.0.0.1:{port}/api"
    say(f"0. Starting a local Prefect server with its UI on http://127.0.0.1:{port} ...")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the Prefect server exited (port {port} busy? try --ui-port)")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.terminate()
        raise SystemExit("the Prefect server did not become healthy within 90 s")
    os.environ["PREFECT_API_URL"] = url
    return process


def _keep_serving(port: int, server: Any) -> None:
    from prefect import serve

    from deployments.serve import build, describe
    from tasks.approval import ensure_timeout_automation

    deployments = build()
    ensure_timeout_automation()
    say()
    say(
        f"Serving {len(deployments)} deployments against the sandbox; the UI: http://127.0.0.1:{port}"
    )
    for deployment in deployments:
        say(f"  - {describe(deployment)}")
    say(
        "Open a deployment, press Run, then read its artifacts. A run's name says DRY RUN or "
        "WRITES (tags dry-run / writes); departed-developer-reassignment/daily writes by default. "
        "Ctrl-C stops."
    )
    try:
        serve(*deployments)
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait(timeout=30)


def _events_demo(args: argparse.Namespace) -> int:
    """The event path end to end (issue 16), every part real, then the runs it made."""
    import copy
    import secrets

    from deployments.event_path import EventPath, triage_examples, wait_until
    from sandbox.export import export
    from sandbox.generator import generate
    from tasks.decide.identity import normalise_email

    server = _start_prefect_server(args.ui_port)
    try:
        say(
            f"1. Generating the sandbox workspace (seed {args.seed}, {args.incidents} incidents) "
            f"and exporting it to {args.out} ..."
        )
        workspace = generate(args.seed, args.incidents)
        args.out.mkdir(parents=True, exist_ok=True)
        _fresh(args.out)
        export(workspace, args.out)
        work = args.out / "events"
        work.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        path = EventPath(
            os.environ["PREFECT_API_URL"],
            env,
            work,
            copy.deepcopy(workspace),
            args.out,
            "demo-" + secrets.token_hex(16),
            window=2.0,
        )
        say(
            "2. Starting the webhook receiver (python -m deployments.webhooks) and serving the "
            "playbooks' deployments with their triggers (writes on for this demo) ..."
        )
        with path.running():
            say(
                f"  receiver: {path.receiver_url}; sandbox: {path.box.url} (its webhooks go to "
                "the receiver, signed)"
            )
            template, email = triage_examples(workspace)[0]
            started = time.monotonic()
            created = path.leak_like(template)
            say(
                f"3. The sandbox detected a new incident #{created['id']} (a leak by {email}); "
                "GitGuardian's webhook 'incident_triggered' went to the receiver ..."
            )

            def assigned() -> Any:
                incident = path.incident(created["id"])
                mail = normalise_email(incident.get("assignee_email") or "")
                return incident if mail == email else None

            incident = wait_until(
                assigned,
                timeout=180,
                interval=0.25,
                what=f"incident {created['id']} to be assigned",
            )
            say(
                f"4. Incident #{created['id']} is {incident['status']}, assigned to "
                f"{incident['assignee_email']}, {time.monotonic() - started:.1f} s after it "
                "was created."
            )
            # The run may still be going (its after-write audit check); the `assigned` webhook
            # our own write caused starts nothing (the receiver finds its intent in the ledger:
            # see its log). One run per event: new-incidents (auto-ignore, then triage).
            time.sleep(2 * path.window + 2)
            say(
                "5. The flow runs the event started (Prefect UI: "
                f"http://127.0.0.1:{args.ui_port}/runs):"
            )
            for run in sorted(path.flow_runs(), key=lambda r: r.created):
                ids = run.parameters.get("incident_ids")
                if ids and created["id"] in ids:  # the runs its events started
                    say(
                        f"  - {run.name}: {run.state.name if run.state else '?'}, "
                        f"incident_ids={ids}"
                    )
            say(f"Logs: {path.logs['receiver']} (the receiver), {path.logs['serve']} (the runs)")
            if args.keep_serving:
                say(
                    "Serving on; create incidents with the sandbox's events to see more. "
                    "Ctrl-C stops."
                )
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
