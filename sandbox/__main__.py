"""Command line: `python -m sandbox serve ...` and `python -m sandbox export ...`."""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def _now(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a probability between 0 and 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox",
                                     description="An offline GitGuardian API and workspace.")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--seed", type=int, default=7, help="generation seed (default 7)")
        sub.add_argument("--incidents", type=int, default=2000, help="how many incidents")
        sub.add_argument("--now", help="reference time, ISO date (default: today, UTC)")

    serve = commands.add_parser("serve", help="serve the API on 127.0.0.1 until interrupted")
    common(serve)
    serve.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    serve.add_argument("--token", help="the full-scope API key (default: invented now)")
    serve.add_argument("--rate-limit", type=int, default=None, help="requests/minute per token")
    serve.add_argument("--faults", type=_probability, default=0.0,
                       help="probability of a 500/502/503 answer")
    serve.add_argument("--resets", type=_probability, default=0.0,
                       help="probability of a dropped connection")
    serve.add_argument("--latency-ms", type=int, default=0, help="added to every answer")
    serve.add_argument("--jitter-ms", type=int, default=0,
                       help="each answer waits an extra random 0..N ms (seeded)")
    serve.add_argument("--webhook-url", help="POST a signed GitGuardian-style event there for "
                       "every change (new incident, occurrence, validity, any write)")
    serve.add_argument("--webhook-token", help="the webhook's signature token (default: the "
                       "GITGUARDIAN_WEBHOOK_TOKEN variable)")
    serve.add_argument("--state-file", type=Path,
                       help="JSON state loaded at start when present, saved at exit")

    export = commands.add_parser("export", help="write directory, repositories, ground truth")
    common(export)
    export.add_argument("--out", type=Path, required=True)
    return parser


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from sandbox import TOKEN_SCOPES, _free_socket, build_workspace, ensure_tokens
    from sandbox.adversity import Adversity
    from sandbox.server import create_app
    from sandbox.store import Store

    started = time.monotonic()
    workspace = build_workspace(args.seed, args.incidents, _now(args.now))
    tokens = ensure_tokens(workspace, args.token)
    store = Store(workspace)
    if args.state_file and args.state_file.exists():
        store.restore(json.loads(args.state_file.read_text(encoding="utf-8")))
    adversity = None
    if args.rate_limit or args.faults or args.resets or args.latency_ms or args.jitter_ms:
        adversity = Adversity(rate_limit=args.rate_limit, faults=args.faults,
                              resets=args.resets, latency_ms=args.latency_ms,
                              jitter_ms=args.jitter_ms, seed=args.seed)
    app = create_app(store, adversity=adversity)
    if args.webhook_url:
        from sandbox.webhooks import WebhookSender

        token = args.webhook_token or os.environ.get("GITGUARDIAN_WEBHOOK_TOKEN")
        if not token:
            print("--webhook-url needs --webhook-token (or GITGUARDIAN_WEBHOOK_TOKEN)",
                  file=sys.stderr)
            return 2
        store.notify = WebhookSender(args.webhook_url, token)
        print(f"webhooks: {args.webhook_url}")
    # The workspace lives as long as the server: keep the collector from walking it again.
    gc.freeze()
    sock = _free_socket(args.port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    print(f"GitGuardian sandbox: {url}  ({len(store.incidents)} incidents, seed {args.seed}, "
          f"ready in {time.monotonic() - started:.1f} s)")
    # The sandbox's own invented keys: printing them is the point of this command.
    print(f"GITGUARDIAN_API_URL={url}")
    print(f"GITGUARDIAN_API_KEY={tokens['full'].secret}")
    for name in TOKEN_SCOPES:
        if name != "full":
            print(f"  token {name}: {tokens[name].secret}")
    sys.stdout.flush()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the interrupt after a clean shutdown
        pass
    finally:
        if args.state_file:
            snapshot = json.dumps(store.snapshot(), ensure_ascii=False)
            temporary = args.state_file.with_suffix(args.state_file.suffix + ".tmp")
            temporary.write_text(snapshot, encoding="utf-8")
            os.replace(temporary, args.state_file)  # never a half-written state file
    return 0


def export(args: argparse.Namespace) -> int:
    from sandbox import build_workspace
    from sandbox.export import export as write_export

    workspace = build_workspace(args.seed, args.incidents, _now(args.now))
    write_export(workspace, args.out)
    print(f"exported seed {args.seed} ({args.incidents} incidents) to {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return serve(args) if args.command == "serve" else export(args)


if __name__ == "__main__":
    raise SystemExit(main())
