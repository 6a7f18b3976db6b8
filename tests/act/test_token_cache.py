"""The token's description is cached for the key's lifetime (tasks/fetch.py
`token_info_cached`): kept longer than the member list, never used past the token's own
`expire_at`, and keyed by a digest of the key, never the key. A real sandbox and a real local
Prefect server (the task cache's records)."""
from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from clients.gitguardian import AuthenticationError, GitGuardianClient
from sandbox.workspace import Token
from tasks import fetch, preflight
from tasks.errors import InputError

pytestmark = [pytest.mark.prefect]


def add_key(box, **fields) -> Token:
    """A new key of the sandbox's, with the full key's scopes and member."""
    full = next(t for t in box.store.tokens.values() if t.secret == box.token)
    token = Token(id=str(uuid.uuid4()), name="short-lived key", scopes=list(full.scopes),
                  member_id=full.member_id, **fields)
    box.store.add_token(token)
    return token


def test_the_description_is_kept_until_the_tokens_expire_at(fresh_sandbox, prefect_server):
    box = fresh_sandbox
    expire_at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    token = add_key(box, expire_at=expire_at)
    client = GitGuardianClient(box.url, token.secret, requests_per_minute=None)
    reads = box.before("GET", "/v1/api_tokens/self", lambda _b: None, times=None)

    first = fetch.token_info_cached(client)
    assert (first.id, first.expire_at) == (token.id, expire_at)
    assert fetch.token_info_cached(client).id == token.id  # from the cache
    assert reads.fired == 1
    # GitGuardian expires the key at expire_at: past it, the cached description is not used,
    # the key is asked again, and the run says the key was refused.
    while datetime.now(UTC) <= expire_at:
        time.sleep(0.2)
    token.status = "expired"
    with pytest.raises(AuthenticationError):  # asked again: the cache would have answered
        fetch.token_info_cached(client)
    with pytest.raises(InputError, match="refused the API key"):
        preflight.check_token(client, (), read=lambda: fetch.token_info_cached(client))


def test_the_description_outlives_the_member_lists_cache(fresh_sandbox, prefect_server,
                                                          monkeypatch):
    """Its own expiry (GG_TOKEN_CACHE_SECONDS): with the member list's cache off, the token's
    description is still cached; a key without expire_at is kept for that long."""
    box = fresh_sandbox
    monkeypatch.setattr(fetch, "SCOPED_CACHE_SECONDS", 0.0)
    token = add_key(box)
    client = GitGuardianClient(box.url, token.secret, requests_per_minute=None)
    reads = box.before("GET", "/v1/api_tokens/self", lambda _b: None, times=None)
    members = box.before("GET", "/v1/members", lambda _b: None, times=None)
    for _ in range(3):
        assert fetch.token_info_cached(client).id == token.id
        fetch.fetch_members_cached(client)
    assert (reads.fired, members.fired) == (1, 3)
    assert fetch.TOKEN_CACHE_SECONDS == 24 * 3600
    assert fetch._token_info.cache_expiration == timedelta(hours=24)
    # The cache key holds a digest of the key, never the key.
    key = fetch._per_token(SimpleNamespace(task=fetch._token_info), {"client": client})
    assert key.startswith("gg-token-info-cached-") and token.secret not in key
