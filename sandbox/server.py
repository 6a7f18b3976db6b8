"""The sandbox's HTTP face: GitGuardian's public API v1 over a `Store`.

`create_app(store)` returns a FastAPI app. Handlers read raw query parameters on purpose:
the real API ignores unknown parameters and answers bad values with `{"detail": ...}`
bodies, which typed FastAPI parameters would turn into 422s.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.adversity import Adversity
from sandbox.store import ApiError, Page, Query, Store
from sandbox.workspace import Token

log = logging.getLogger(__name__)

APP_VERSION = "v2.521.0-sandbox"
SELF_HOSTED_PREFIX = "/exposed"
SECRETS_ENGINE_VERSION = "2.140.0"
_COMMON_HEADERS = {"x-app-version": APP_VERSION, "x-secrets-engine-version": SECRETS_ENGINE_VERSION}


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(content, status_code=status, headers={**_COMMON_HEADERS, **(headers or {})})


def _api_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "token" and value.strip() else None


async def _body(request: Request) -> dict[str, Any]:
    """JSON or form-encoded body, as the real API accepts both; empty means `{}`."""
    raw = await request.body()
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        value = json.loads(raw)
    except ValueError:
        if "json" in content_type:
            raise ApiError(400, "JSON parse error.") from None
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid data: expected a dictionary.")
    return value


def _as_bool(value: Any, name: str, default: bool | None = None) -> bool | None:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ApiError(400, f"{name}: must be a valid boolean.")


def _as_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ApiError(400, f"{name}: a valid integer is required.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name}: a valid integer is required.") from None


def _reset_connection(send: Callable[..., Awaitable[None]]) -> bool:
    """Drop the TCP connection under uvicorn with an RST. False when not under uvicorn."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()
    return True


class Hook:
    """One interleaving hook: `action()` runs when a matching request reaches its moment.

    `fired` counts the matching requests that ran it; `times` of them spend it (None: never).
    An exception raised by the action is kept in `errors` (and logged); the request goes on.
    """

    def __init__(self, registry: Hooks, when: str, method: str, path: str,
                 action: Callable[[], Any], times: int | None):
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for every matching request")
        self.when, self.method, self.path = when, method.upper(), path
        self.pattern = re.compile(path)
        self.action = action
        self.times = times
        self.fired = 0
        self.errors: list[BaseException] = []
        self._registry = registry

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def cancel(self) -> None:
        self._registry.remove(self)

    def __repr__(self) -> str:
        return f"Hook({self.when} {self.method} {self.path!r}, fired={self.fired})"


class Hooks:
    """The interleaving hooks of one app; thread-safe. Actions run in a worker thread of the
    server, so one may itself call the sandbox over HTTP without blocking the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[Hook] = []

    def add(self, when: str, method: str, path: str, action: Callable[[], Any],
            times: int | None = 1) -> Hook:
        if when not in ("before", "after", "respond"):
            raise ValueError(f"when is 'before', 'after' or 'respond', not {when!r}")
        hook = Hook(self, when, method, path, action, times)
        with self._lock:
            self._hooks.append(hook)
        return hook

    def remove(self, hook: Hook) -> None:
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def clear(self) -> None:
        with self._lock:
            self._hooks.clear()

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def claim(self, when: str, method: str, path: str) -> list[Hook]:
        """The hooks this request fires, counted now (so `times` holds under concurrency)."""
        with self._lock:
            chosen = [h for h in self._hooks if h.when == when and h.method == method
                      and h.pattern.fullmatch(path)]
            for hook in chosen:
                hook.fired += 1
                if hook.spent:
                    self._hooks.remove(hook)
            return chosen

    async def fire(self, when: str, method: str, path: str) -> None:
        for hook in self.claim(when, method, path):
            try:
                await run_in_threadpool(hook.action)
            except Exception as error:  # kept for the test to see; the request goes on
                log.warning("sandbox %s hook on %s %s raised %r", when, method, path, error)
                hook.errors.append(error)


class SandboxApp(FastAPI):
    """The FastAPI app with `Adversity` applied before anything else runs.

    Applied in `__call__` rather than as Starlette middleware so that `send` is uvicorn's
    own and a reset can reach the transport.
    """

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["path"].startswith(SELF_HOSTED_PREFIX + "/"):
            # A self-hosted instance serves the API under /exposed: the same routes, and
            # `Link` headers that keep the prefix (hooks match the path without it).
            path = scope["path"][len(SELF_HOSTED_PREFIX):]
            scope = {**scope, "path": path, "raw_path": path.encode(),
                     "gg_prefix": SELF_HOSTED_PREFIX}
        adversity: Adversity | None = getattr(self.state, "adversity", None)
        if scope["type"] != "http" or adversity is None or not adversity.active:
            await self._handle(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        fate = adversity.decide(headers.get(b"authorization", b"").decode("latin-1"))
        if fate.delay_seconds:
            await asyncio.sleep(fate.delay_seconds)
        if fate.reset and _reset_connection(send):
            return
        if fate.status is None and not fate.reset:
            await self._handle(scope, receive, send)
            return
        status = fate.status or 500
        extra: dict[str, str] = {}
        detail = "A server error occurred."
        if status == 429:
            extra["retry-after"] = str(fate.retry_after)
            detail = f"Request was throttled. Expected available in {fate.retry_after} seconds."
        elif fate.maintenance:
            extra["x-maintenance"] = "true"
            detail = "Service under maintenance."
        elif status == 502:
            detail = "Bad gateway."
        await _json({"detail": detail}, status, extra)(scope, receive, send)

    async def _handle(self, scope: dict, receive: Callable, send: Callable) -> None:
        """The API itself, with the interleaving hooks of authenticated requests around it."""
        hooks: Hooks | None = getattr(self.state, "hooks", None)
        if scope["type"] != "http" or not hooks or not self._authenticated(scope):
            await super().__call__(scope, receive, send)
            return
        method, path = scope["method"].upper(), scope["path"]
        canned = hooks.claim("respond", method, path)
        if canned:
            # A canned answer instead of the API's own (the request is not handled): the
            # first matching hook's action gives (status, body text, content type).
            status, body, content_type = await run_in_threadpool(canned[0].action)
            response = Response(body, status_code=status, media_type=content_type,
                                headers=_COMMON_HEADERS)
            await response(scope, receive, send)
            return
        await hooks.fire("before", method, path)
        started = False

        async def send_after_hooks(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start" and not started:
                started = True  # the request is handled; its answer is not sent yet
                await hooks.fire("after", method, path)
            await send(message)

        await super().__call__(scope, receive, send_after_hooks)

    def _authenticated(self, scope: dict) -> bool:
        try:
            self.state.store.authenticate(_api_key(Request(scope)))
        except ApiError:
            return False
        return True


def create_app(
    store: Store, *, base_url_hint: str | None = None, adversity: Adversity | None = None
) -> FastAPI:
    """The API app. `base_url_hint` fixes the origin written in `Link` headers."""
    app = SandboxApp(title="GitGuardian sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.adversity = adversity
    app.state.hooks = Hooks()

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> Response:
        return _json({"detail": error.detail}, error.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Response:
        detail = "Not found." if error.status_code == 404 else str(error.detail)
        return _json({"detail": detail}, error.status_code)

    def token_for(request: Request, scope: str | None = None) -> Token:
        token = store.authenticate(_api_key(request))
        if scope:
            store.require(token, scope)
        return token

    def listing(request: Request, page: Page) -> Response:
        base = (base_url_hint or str(request.base_url)).rstrip("/")
        params = dict(request.query_params)
        links = []
        for cursor, rel in ((page.next_cursor, "next"), (page.prev_cursor, "prev")):
            if cursor:
                query = {**params, "cursor": cursor, "per_page": str(page.per_page)}
                path = request.scope.get("gg_prefix", "") + request.url.path
                url = f"{base}{path}?{urlencode(sorted(query.items()))}"
                links.append(f'<{url}>; rel="{rel}"')
        return _json(page.items, headers={"link": ", ".join(links),
                                          "x-per-page": str(page.per_page)})

    def query_of(request: Request) -> Query:
        return Query(dict(request.query_params))

    @app.get("/v1/health")
    async def health(request: Request) -> Response:
        token_for(request)
        return _json({"detail": "Valid API key."})

    @app.get("/v1/api_tokens/self")
    async def token_self(request: Request) -> Response:
        return _json(store.token_info(token_for(request)))

    @app.get("/v1/sources/{source_id:int}/incidents/secrets")
    async def source_incidents(request: Request, source_id: int) -> Response:
        token_for(request, "incidents:read")
        return listing(request, store.list_incidents(query_of(request), source_id=source_id))

    @app.get("/v1/incidents/secrets/{incident_id:int}")
    async def incident(request: Request, incident_id: int) -> Response:
        token_for(request, "incidents:read")
        return _json(store.get_incident(incident_id, query_of(request)))

    @app.patch("/v1/incidents/secrets/{incident_id:int}")
    async def update_incident(request: Request, incident_id: int) -> Response:
        token = token_for(request, "incidents:write")
        return _json(store.update_incident(token, incident_id, await _body(request)))

    @app.get("/v1/incidents/secrets/{incident_id:int}/activity-logs")
    async def activity_logs(request: Request, incident_id: int) -> Response:
        token_for(request, "incidents:read")
        return listing(request, store.list_activity_logs(incident_id, query_of(request)))

    @app.get("/v1/incidents/secrets/{incident_id:int}/members")
    @app.get("/v1/secret-incidents/{incident_id:int}/members")
    async def incident_members(request: Request, incident_id: int) -> Response:
        token_for(request, "incidents:read")
        return listing(request, store.list_incident_members(incident_id, query_of(request)))

    @app.get("/v1/members/{member_id:int}/secret-incidents")
    async def member_incidents(request: Request, member_id: int) -> Response:
        token_for(request, "incidents:read")
        return listing(request, store.list_member_incidents(member_id, query_of(request)))

    async def _access_target(request: Request) -> tuple[int | None, str | None]:
        body = await _body(request)
        email = body.get("email")
        if email is not None and not isinstance(email, str):
            raise ApiError(400, "email: enter a valid email address.")
        member_id = _as_int(body.get("member_id"), "member_id")
        if (email is None) == (member_id is None):
            raise ApiError(400, "Exactly one of email and member_id must be given.")
        return member_id, email

    @app.post("/v1/incidents/secrets/{incident_id:int}/grant_access")
    async def grant_access(request: Request, incident_id: int) -> Response:
        token = token_for(request, "members:write")
        body = await _body(request)
        member_id, email = await _access_target(request)
        return _json(store.grant_access(token, incident_id, member_id=member_id, email=email,
                                        permission=body.get("incident_permission", "can_edit")))

    @app.post("/v1/incidents/secrets/{incident_id:int}/revoke_access")
    async def revoke_access(request: Request, incident_id: int) -> Response:
        token = token_for(request, "members:write")
        member_id, email = await _access_target(request)
        store.revoke_access(token, incident_id, member_id=member_id, email=email)
        return Response(status_code=204, headers=_COMMON_HEADERS)

    @app.put("/v1/members/{member_id:int}/secret_incidents/{incident_id:int}")
    async def put_access(request: Request, member_id: int, incident_id: int) -> Response:
        token = token_for(request, "members:write")
        body = await _body(request)
        _as_bool(request.query_params.get("send_email"), "send_email", True)
        return _json(store.grant_access(token, incident_id, member_id=member_id,
                                        permission=body.get("permission", "can_edit")))

    @app.delete("/v1/members/{member_id:int}/secret_incidents/{incident_id:int}")
    async def delete_access(request: Request, member_id: int, incident_id: int) -> Response:
        token = token_for(request, "members:write")
        store.revoke_access(token, incident_id, member_id=member_id)
        return Response(status_code=204, headers=_COMMON_HEADERS)

    @app.get("/v1/api_tokens/{token_id}")
    async def api_token(request: Request, token_id: str) -> Response:
        if token_id == "self":
            return _json(store.token_info(token_for(request)))
        token_for(request, "api_tokens:read")
        return _json(store.get_token(token_id))

    @app.post("/v1/incidents/secrets/{incident_id:int}/assign")
    async def assign(request: Request, incident_id: int) -> Response:
        token = token_for(request, "incidents:write")
        body = await _body(request)
        # send_email is accepted and has nothing to send in the sandbox
        _as_bool(request.query_params.get("send_email"), "send_email", True)
        email = body.get("email")
        if email is not None and not isinstance(email, str):
            raise ApiError(400, "email: enter a valid email address.")
        return _json(store.assign(token, incident_id, email=email or None,
                                  member_id=_as_int(body.get("member_id"), "member_id")))

    @app.post("/v1/incidents/secrets/{incident_id:int}/unassign")
    async def unassign(request: Request, incident_id: int) -> Response:
        return _json(store.unassign(token_for(request, "incidents:write"), incident_id))

    @app.post("/v1/incidents/secrets/{incident_id:int}/resolve")
    async def resolve(request: Request, incident_id: int) -> Response:
        token = token_for(request, "incidents:write")
        body = await _body(request)
        revoked = _as_bool(body.get("secret_revoked"), "secret_revoked")
        return _json(store.resolve(token, incident_id, revoked))

    @app.post("/v1/incidents/secrets/{incident_id:int}/ignore")
    async def ignore(request: Request, incident_id: int) -> Response:
        token = token_for(request, "incidents:write")
        body = await _body(request)
        return _json(store.ignore(token, incident_id, body.get("ignore_reason")))

    @app.post("/v1/incidents/secrets/{incident_id:int}/reopen")
    async def reopen(request: Request, incident_id: int) -> Response:
        return _json(store.reopen(token_for(request, "incidents:write"), incident_id))

    @app.post("/v1/incidents/secrets/{incident_id:int}/share")
    async def share(request: Request, incident_id: int) -> Response:
        token = token_for(request, "incidents:share")
        body = await _body(request)
        return _json(store.share(
            token,
            incident_id,
            auto_healing=bool(_as_bool(body.get("auto_healing"), "auto_healing", False)),
            feedback_collection=bool(
                _as_bool(body.get("feedback_collection"), "feedback_collection", True)),
            lifespan=_as_int(body.get("lifespan"), "lifespan") or 0,
        ))

    @app.post("/v1/incidents/secrets/{incident_id:int}/unshare")
    async def unshare(request: Request, incident_id: int) -> Response:
        store.unshare(token_for(request, "incidents:share"), incident_id)
        return Response(status_code=204, headers=_COMMON_HEADERS)

    @app.get("/v1/incidents/secrets/{incident_id:int}/notes")
    async def notes(request: Request, incident_id: int) -> Response:
        token_for(request, "incidents:read")
        return listing(request, store.list_notes(incident_id, query_of(request)))

    @app.post("/v1/incidents/secrets/{incident_id:int}/notes")
    async def add_note(request: Request, incident_id: int) -> Response:
        token = token_for(request, "incidents:write")
        body = await _body(request)
        return _json(store.add_note(token, incident_id, body.get("comment")), 201)

    @app.patch("/v1/incidents/secrets/{incident_id:int}/notes/{note_id:int}")
    async def update_note(request: Request, incident_id: int, note_id: int) -> Response:
        token = token_for(request, "incidents:write")
        body = await _body(request)
        return _json(store.update_note(token, incident_id, note_id, body.get("comment")))

    @app.delete("/v1/incidents/secrets/{incident_id:int}/notes/{note_id:int}")
    async def delete_note(request: Request, incident_id: int, note_id: int) -> Response:
        store.delete_note(token_for(request, "incidents:write"), incident_id, note_id)
        return Response(status_code=204, headers=_COMMON_HEADERS)

    @app.get("/v1/members/{member_id:int}")
    async def member(request: Request, member_id: int) -> Response:
        token_for(request, "members:read")
        return _json(store.get_member(member_id))

    @app.get("/v1/sources/{source_id:int}")
    async def source(request: Request, source_id: int) -> Response:
        token_for(request, "sources:read")
        return _json(store.get_source(source_id))

    def workspace_listing(scope: str, method: str) -> Any:
        async def route(request: Request) -> Response:
            token_for(request, scope)
            return listing(request, getattr(store, method)(query_of(request)))

        return route

    # The workspace-wide listings: (path, the scope they need, the store's method).
    for path, scope, method in (
        ("/v1/incidents/secrets", "incidents:read", "list_incidents"),
        ("/v1/api_tokens", "api_tokens:read", "list_tokens"),
        ("/v1/occurrences/secrets", "incidents:read", "list_occurrences"),
        ("/v1/members", "members:read", "list_members"),
        ("/v1/teams", "teams:read", "list_teams"),
        ("/v1/sources", "sources:read", "list_sources"),
        ("/v1/audit_logs", "audit_logs:read", "list_audit_logs"),
    ):
        app.get(path)(workspace_listing(scope, method))

    return app
