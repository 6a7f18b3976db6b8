"""API keys and scopes: who is asking, what their token may do, the tokens endpoints."""
from __future__ import annotations

from datetime import timedelta

from clients.models import granted_scopes
from sandbox.api import INVALID_KEY, NOT_FOUND, PERMISSION_DENIED, ApiError, iso
from sandbox.query import Page, Query, in_order, paginate
from sandbox.state import State
from sandbox.workspace import Token


def token_has_scope(token: Token, scope: str) -> bool:
    """The one scope rule (clients.models): a scope includes others."""
    return scope in granted_scopes(token.scopes)


class Tokens(State):
    """Authentication, scope checks and the tokens endpoints."""

    def authenticate(self, secret: str | None) -> Token:
        token = self.tokens.get(secret or "")
        if token is None or token.status != "active":
            raise ApiError(401, INVALID_KEY)
        return token

    @staticmethod
    def require(token: Token, scope: str) -> None:
        if not token_has_scope(token, scope):
            raise ApiError(403, PERMISSION_DENIED)

    def token_info(self, token: Token) -> dict:
        ended = iso(self.workspace.now - timedelta(days=1))
        return {
            "id": token.id,
            "name": token.name,
            "type": token.type,
            "scopes": list(token.scopes),
            "member_id": token.member_id,
            "workspace_id": self.workspace_id,
            "created_at": iso(self.workspace.now - timedelta(days=90)),
            "last_used_at": self.now(),
            "expire_at": (iso(token.expire_at) if token.expire_at is not None
                          else ended if token.status == "expired" else None),
            "revoked_at": ended if token.status == "revoked" else None,
            "status": token.status,
            "creator_id": token.member_id,
        }

    def _token_answer(self, token: Token) -> dict:
        return self.token_info(token)

    def list_tokens(self, query: Query) -> Page:
        with self.lock:
            tokens = [self._token_answer(t) for t in self.tokens.values()]
            for name in ("status", "type"):
                values = query.many(name)
                if values is not None:
                    tokens = [t for t in tokens if t.get(name) in set(values)]
            member_ids = query.integers("member_id")
            if member_ids is not None:
                tokens = [t for t in tokens if t.get("member_id") in set(member_ids)]

            def key(t: dict) -> str:
                return t["id"]

            return paginate(in_order(tokens, key), key, False, query)

    def get_token(self, token_id: str) -> dict:
        with self.lock:
            for token in self.tokens.values():
                if token.id == token_id:
                    return self._token_answer(token)
            raise ApiError(404, NOT_FOUND)
