"""An offline GitGuardian: a faithful API server over a seeded workspace, directory and repos.

`running()` serves it on a free loopback port in a background thread:

    with sandbox.running(seed=7, incidents=200) as box:
        requests.get(box.url + "/v1/incidents/secrets",
                     headers={"Authorization": f"Token {box.token}"})
"""
from __future__ import annotations

import contextlib
import random
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandbox.adversity import Adversity
from sandbox.store import Human, Store
from sandbox.workspace import Token, Workspace

if TYPE_CHECKING:  # the server module imports FastAPI: only when serving
    from sandbox.server import Hook

# The scopes of a full personal access token, as the real API lists them.
FULL_SCOPES = [
    "scan", "incidents:read", "incidents:write", "incidents:share", "members:read",
    "members:write", "audit_logs:read", "teams:read", "teams:write", "honeytokens:read",
    "honeytokens:write", "api_tokens:read", "api_tokens:write", "ip_allowlist:read",
    "ip_allowlist:write", "sources:read", "sources:write", "custom_tags:read",
    "custom_tags:write", "secrets:read", "secrets:write",
]
# Reduced tokens that tests and demos use to meet a 403 on purpose.
TOKEN_SCOPES = {
    "full": FULL_SCOPES,
    "read": ["incidents:read", "members:read"],
    "no_audit": [s for s in FULL_SCOPES if s != "audit_logs:read"],
    "writer": ["incidents:write", "incidents:read", "members:read"],
}

__all__ = ["Sandbox", "Events", "Dashboard", "running", "serve_in_thread", "ensure_tokens",
           "TOKEN_SCOPES"]


def ensure_tokens(workspace: Workspace, full_secret: str | None = None) -> dict[str, Token]:
    """The sandbox's named tokens, added to the workspace when the generator made none.

    Ids are seeded (they appear in answers and audit logs); secrets are invented now and
    never written anywhere.
    """
    by_name = {t.name: t for t in workspace.tokens}
    ids = random.Random(f"tokens-{workspace.seed}")
    owner = next(
        (m["id"] for m in workspace.members
         if m.get("active", True) and m.get("access_level") in ("owner", "manager")),
        workspace.members[0]["id"] if workspace.members else 1,
    )
    member_id = workspace.tokens[0].member_id if workspace.tokens else owner
    named: dict[str, Token] = {}
    for name, scopes in TOKEN_SCOPES.items():
        token_id = str(uuid.UUID(int=ids.getrandbits(128), version=4))
        token = by_name.get(name)
        if token is None:
            token = Token(id=token_id, name=name, scopes=list(scopes), member_id=member_id)
            workspace.tokens.append(token)
        if not token.secret:
            token.secret = "sandbox-" + secrets.token_hex(16)
        named[name] = token
    if full_secret:
        named["full"].secret = full_secret
    return named


class Events:
    """Things that happen on the platform without an API call, as the real service does them."""

    def __init__(self, store: Store):
        self._store = store

    def new_incident(self, **fields: Any) -> dict:
        return self._store.new_incident(**fields)

    def new_occurrence(self, incident_id: int, **fields: Any) -> dict:
        return self._store.new_occurrence(incident_id, **fields)

    def set_validity(self, incident_id: int, validity: str) -> dict:
        return self._store.set_validity(incident_id, validity)

    def deactivate_member(self, member_id: int) -> dict:
        return self._store.deactivate_member(member_id)


def pick_human(store: Store) -> dict:
    """The member a `Dashboard` acts as: active, owner or manager, and not the member behind
    the API tokens when another qualifies (so their edits tell apart from ours)."""
    ours = {t.member_id for t in store.tokens.values()}
    active = [m for m in store.members.values() if m.get("active", True)]
    senior = [m for m in active if m.get("access_level") in ("owner", "manager")]
    for pool in ([m for m in senior if m["id"] not in ours], senior,
                 [m for m in active if m["id"] not in ours], active):
        if pool:
            return min(pool, key=lambda m: m["id"])
    raise ValueError("the workspace has no active member to act as a human")


class Dashboard:
    """A human workspace member editing incidents in the dashboard, while a run goes on.

    The same store logic as API writes (state machine, 409s), acted by `member` with no token:
    audit entries, resolver/ignorer fields and notes carry the member and no api_token_id.
    Errors are the store's `ApiError` (`.status`, `.detail`).
    """

    def __init__(self, store: Store, member_id: int):
        self._store = store
        self._actor = Human(member_id)

    @property
    def member(self) -> dict:
        """The human's member object, as the API shows it now."""
        return self._store.get_member(self._actor.member_id)

    def assign(self, incident_id: int, email: str) -> dict:
        return self._store.assign(self._actor, incident_id, email=email)

    def unassign(self, incident_id: int) -> dict:
        return self._store.unassign(self._actor, incident_id)

    def resolve(self, incident_id: int, secret_revoked: bool = False) -> dict:
        return self._store.resolve(self._actor, incident_id, secret_revoked)

    def ignore(self, incident_id: int, reason: str) -> dict:
        return self._store.ignore(self._actor, incident_id, reason)

    def reopen(self, incident_id: int) -> dict:
        return self._store.reopen(self._actor, incident_id)

    def add_note(self, incident_id: int, comment: str) -> dict:
        return self._store.add_note(self._actor, incident_id, comment)


@dataclass
class Sandbox:
    url: str
    tokens: dict[str, str]
    workspace: Workspace
    store: Store
    events: Events
    _app: Any = field(repr=False)
    _stop: Callable[[], None] = field(repr=False)
    human: Dashboard = field(init=False, repr=False)
    webhooks: Any = field(default=None, repr=False)  # sandbox.webhooks.WebhookSender or None

    def __post_init__(self) -> None:
        self.human = Dashboard(self.store, pick_human(self.store)["id"])

    def __repr__(self) -> str:  # never show the token values
        return f"Sandbox(url={self.url!r}, incidents={len(self.store.incidents)})"

    @property
    def token(self) -> str:
        return self.tokens["full"]

    def state(self) -> dict[str, Any]:
        """A deep copy of the server's current state: incidents, notes, audit logs, ..."""
        return self.store.snapshot()

    def set_adversity(self, **options: Any) -> Adversity | None:
        """Change faults at run time: Adversity's fields; no options turns adversity off."""
        adversity = Adversity(**options) if options else None
        self._app.state.adversity = adversity
        return adversity

    def before(self, method: str, path: str, action: Callable[[Sandbox], Any], *,
               times: int | None = 1) -> Hook:
        """Run `action(box)` in the server just before a matching request is handled.

        Matching: `method` ("GET", "POST", ...) and `re.fullmatch(path, request path)`, for
        requests whose API key is valid (after adversity, which may answer first). Fires for
        `times` matching requests (None: every one); returns the hook: `.fired`, `.cancel()`.
        """
        return self._app.state.hooks.add("before", method, path, lambda: action(self), times)

    def after(self, method: str, path: str, action: Callable[[Sandbox], Any], *,
              times: int | None = 1) -> Hook:
        """Run `action(box)` after a matching request was handled, before its answer is sent:
        the client read the old state, and its next request meets the change."""
        return self._app.state.hooks.add("after", method, path, lambda: action(self), times)

    def respond(self, method: str, path: str, status: int, body: str | Callable[[Sandbox], str],
                *, content_type: str = "application/json", times: int | None = 1) -> Hook:
        """Answer matching requests with a canned response instead of handling them: `status`,
        `body` (text, or `body(box)` made when the request arrives) and `content_type`, e.g. a
        share answering a 409 or a body that is not JSON. An action of `before` that raises
        `ApiError` does not do this: the hook's error is kept and the request goes on."""

        def answer() -> tuple[int, str, str]:
            return status, body(self) if callable(body) else body, content_type

        return self._app.state.hooks.add("respond", method, path, answer, times)

    def clear_hooks(self) -> None:
        self._app.state.hooks.clear()

    def stop(self) -> None:
        self._stop()


def _free_socket(port: int = 0) -> socket.socket:
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says it is TCP; without it Nagle's algorithm held every small answer's
    # body about 40 ms behind its headers (found by benchmarks/writepath.py).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))  # loopback only: the sandbox is never exposed
    return sock


def serve_in_thread(app: Any, port: int = 0) -> tuple[str, Callable[[], None]]:
    """Start uvicorn on a loopback socket in a daemon thread: (base URL, stop function)."""
    import uvicorn

    sock = _free_socket(port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="sandbox-server", daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return url, stop


def _wait_ready(url: str, token: str, timeout: float = 30.0) -> None:
    """Poll /v1/health until it answers; no fixed sleep."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{url}/v1/health", headers={"Authorization": f"Token {token}"},
                            timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"sandbox at {url} did not become ready in {timeout} s")
        time.sleep(0.02)


def build_workspace(seed: int, incidents: int, now: datetime | str | None) -> Workspace:
    from sandbox.generator import generate

    if isinstance(now, str):
        now = datetime.fromisoformat(now.replace("Z", "+00:00"))
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return generate(seed, incidents, now=now)


@contextlib.contextmanager
def running(
    seed: int = 7,
    incidents: int = 200,
    *,
    token: str | None = None,
    rate_limit: int | None = None,
    faults: float = 0.0,
    latency_ms: int = 0,
    jitter_ms: int = 0,
    resets: float = 0.0,
    now: datetime | str | None = None,
    workspace: Workspace | None = None,
    port: int = 0,
    strict_reassign: bool = False,
    webhook_url: str | None = None,
    webhook_token: str | None = None,
) -> Iterator[Sandbox]:
    """Serve a seeded sandbox on a free loopback port for the duration of the block.

    jitter_ms: each request waits an extra uniform 0..jitter_ms ms (seeded), after latency_ms.
    strict_reassign: assigning an incident to its current assignee answers 409 instead of the
    real API's 200 (off by default).
    webhook_url, webhook_token: post a signed GitGuardian-style event for every change
    (sandbox/webhooks.py); `box.webhooks` is the sender (None without a URL).
    """
    from sandbox.server import create_app

    workspace = workspace if workspace is not None else build_workspace(seed, incidents, now)
    named = ensure_tokens(workspace, token)
    store = Store(workspace, strict_reassign=strict_reassign)
    sender = None
    if webhook_url:
        from sandbox.webhooks import WebhookSender

        sender = store.notify = WebhookSender(webhook_url, webhook_token or "")
    app = create_app(store)
    url, stop = serve_in_thread(app, port)
    box = Sandbox(url=url, tokens={n: t.secret for n, t in named.items()},
                  workspace=workspace, store=store, events=Events(store), _app=app, _stop=stop)
    try:
        _wait_ready(url, box.token)
        # Adversity starts after the readiness poll so the poll spends none of its budget.
        if rate_limit or faults or resets or latency_ms or jitter_ms:
            box.set_adversity(rate_limit=rate_limit, faults=faults, resets=resets,
                              latency_ms=latency_ms, jitter_ms=jitter_ms, seed=seed)
        box.webhooks = sender
        yield box
    finally:
        stop()
        if sender is not None:
            sender.stop()
