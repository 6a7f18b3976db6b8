"""The demo: the whole product on the embedded sandbox, in Prefect's local mode.

`make demo` (or `python -m flows.demo`) starts the sandbox GitGuardian API on a free loopback port
with a seeded workspace, exports its directory and git repositories to `data/demo/`, lists the
incidents through the client, then runs each playbook as a dry run, applies it, runs the weekly
report, and prints what happened and where to look. No account, no token, no server to start.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def say(message: str = "") -> None:
    print(message, flush=True)


def _environment(box: Any, out: Path) -> None:
    """Point every adapter at the sandbox and its exports, as an operator would with env vars."""
    os.environ.update(
        GITGUARDIAN_API_URL=box.url,
        GITGUARDIAN_API_KEY=box.token,
        GITGUARDIAN_REQUESTS_PER_MINUTE="0",  # the sandbox has no rate limit unless asked
        DIRECTORY_JSON=str(out / "directory.json"),
        LDAP_BASE_DN="dc=corp,dc=example",
        LDAP_LEAVERS_OU="ou=leavers,dc=corp,dc=example",
        GIT_MIRRORS_ROOT=str(out / "repos"),
        LEDGER_URL=f"sqlite:///{out / 'ledger.sqlite'}",
        REPORTS_DIR=str(out / "reports"),
    )
    os.environ.pop("LDAP_URL", None)


def _list_incidents(box: Any) -> None:
    from clients.gitguardian import GitGuardianClient

    client = GitGuardianClient(box.url, box.token, requests_per_minute=None)
    by_status: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    for page in client.incident_pages(per_page=100):
        for incident in page:
            by_status[incident.status] += 1
            by_severity[incident.severity] += 1
    total = sum(by_status.values())
    say(f"  {total} incidents listed through the client in {client.requests_total} requests")
    say("  by status:   " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())))
    say("  by severity: " + ", ".join(f"{k} {v}" for k, v in by_severity.most_common()))


def _run(title: str, flow_fn: Any, **parameters: Any) -> dict[str, Any]:
    started = time.monotonic()
    state = flow_fn(return_state=True, **parameters)
    data = state.result(raise_on_failure=False)
    elapsed = time.monotonic() - started
    if isinstance(data, BaseException):
        say(f"  {title}: FAILED after {elapsed:.1f}s: {data}")
        return {}
    summary = data.get("summary") or f"week {data.get('week')}, {len(data.get('files', {}))} files"
    say(f"  {title} ({elapsed:.1f}s): {summary}")
    return data


def _playbooks() -> list[tuple[str, Any, Any]]:
    """(label, flow, default policy) for each playbook present."""
    found = []
    from flows.departed_developers import departed_developer_reassignment
    from tasks.decide.departed import DepartedPolicy

    found.append(("departed-developer reassignment", departed_developer_reassignment, DepartedPolicy()))
    try:
        from flows.test_credentials import test_directory_auto_ignore
        from tasks.decide.test_credentials import TestCredentialPolicy

        found.append(("test-directory auto-ignore", test_directory_auto_ignore, TestCredentialPolicy()))
    except ImportError:
        pass
    try:
        from flows.commit_author_triage import commit_author_triage
        from tasks.decide.triage import TriagePolicy

        found.append(("commit-author triage", commit_author_triage, TriagePolicy()))
    except ImportError:
        pass
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--incidents", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "demo")
    parser.add_argument("--max-actions", type=int, default=500)
    parser.add_argument("--keep-serving", action="store_true",
                        help="afterwards, keep the sandbox and a local Prefect server with its UI up, "
                        "serving every deployment of prefect.yaml against the sandbox (Ctrl-C stops)")
    parser.add_argument("--ui-port", type=int, default=4200)
    parser.add_argument("--token", help="the sandbox's full-scope API key (default: made up now)")
    args = parser.parse_args(argv)

    os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    server = _start_prefect_server(args.ui_port) if args.keep_serving else None

    import sandbox
    from sandbox.export import export

    say(f"1. Starting the sandbox GitGuardian API (seed {args.seed}, {args.incidents} incidents)...")
    with sandbox.running(seed=args.seed, incidents=args.incidents, token=args.token) as box:
        say(f"  serving at {box.url}")
        args.out.mkdir(parents=True, exist_ok=True)
        export(box.workspace, args.out)
        say(f"  directory and git repositories exported to {args.out}")
        _environment(box, args.out)

        say("2. Listing its incidents through the client...")
        _list_incidents(box)

        say("3. Running each playbook: a dry run (the plan), then for real (Prefect local mode)...")
        results = {}
        for label, flow_fn, policy in _playbooks():
            _run(f"{label}, dry run", flow_fn, policy=policy, dry_run=True, max_actions=args.max_actions)
            results[label] = _run(f"{label}, applied", flow_fn, policy=policy, dry_run=False,
                                  max_actions=args.max_actions)

        try:
            from flows.weekly_report import weekly_report
        except ImportError:
            weekly_report = None
        report_file = None
        if weekly_report is not None:
            # The current, partial week: the automation section then shows what the playbooks just did.
            from datetime import datetime, timezone

            year, week, _ = datetime.now(timezone.utc).isocalendar()
            say(f"4. Writing the weekly report of this week so far ({year}-W{week:02d})...")
            data = _run("weekly report", weekly_report, week=f"{year}-W{week:02d}",
                        output_dir=str(args.out / "reports"))
            report_file = (data.get("files") or {}).get("report.html") if data else None

        if server is not None:  # the sandbox stays up while the deployments are served
            _keep_serving(args.ui_port, server)

    say()
    say("Done. Where to look next:")
    say(f"  - the audit ledger of every decision and write: {args.out / 'ledger.sqlite'}")
    if report_file:
        say(f"  - the weekly report: {report_file}")
    home = os.environ["PREFECT_HOME"]
    say(f"  - the flow runs and their plan/outcome artifacts: `PREFECT_HOME={home} "
        ".venv/bin/prefect server start`,")
    say("    then http://127.0.0.1:4200 (this demo used Prefect's local mode with that PREFECT_HOME)")
    say("  - each playbook's options: python -m flows.departed_developers --help")
    return 0


def _start_prefect_server(port: int) -> Any:
    """A local Prefect server with the UI, so the demo's runs and artifacts stay visible."""
    import subprocess
    import urllib.request

    url = f"http://127.0.0.1:{port}/api"
    say(f"0. Starting a local Prefect server with its UI on http://127.0.0.1:{port} ...")
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(),
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

    deployments = build()
    say()
    say(f"Serving {len(deployments)} deployments against the sandbox; the UI: http://127.0.0.1:{port}")
    for deployment in deployments:
        say(f"  - {describe(deployment)}")
    say("Open a deployment, press Run (a dry run by default), then read its artifacts. Ctrl-C stops.")
    try:
        serve(*deployments)
    except KeyboardInterrupt:
        pass
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
