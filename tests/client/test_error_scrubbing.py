"""Secrets never ride on error texts (issue 13, item 5): whatever the server answers, an error
built from it holds no share link, no `token=` value and no key, in its str, repr and detail."""
from __future__ import annotations

import secrets

import pytest
import responses

from clients.gitguardian import Conflict, GitGuardianError, InvalidResponse
from clients.redact import scrub
from tests.client.conftest import BASE, KEY
from tests.fixtures.canary import secrets_in

SHARE = f"{BASE}/v1/incidents/secrets/7/share"


def _link() -> tuple[str, str]:
    # Made now, as the sandbox makes them: never a realistic-looking link in the repository.
    token = secrets.token_urlsafe(24)
    return f"https://dashboard.gitguardian.com/share/incidents/{token}", token


def _texts(error: GitGuardianError) -> list[str]:
    return [str(error), repr(error), error.detail, *map(str, error.args)]


def _assert_clean(error: GitGuardianError, *hidden: str) -> None:
    for text in _texts(error):
        assert secrets_in(text) == []  # names the canary, never shows it
        leaked = any(value in text for value in hidden) or "/share/" in text
        assert not leaked, "a secret rides on the error text"  # the text itself is not shown


@responses.activate
def test_a_share_answer_that_is_not_json_keeps_its_link_out_of_the_error(client):
    link, token = _link()
    responses.post(SHARE, body=f"<html>Shared: <a href={link}>{link}</a></html>", status=200,
                   content_type="text/html")
    with pytest.raises(InvalidResponse) as caught:
        client.share(7)
    _assert_clean(caught.value, link, token)
    assert "[share link removed]" in caught.value.detail


@responses.activate
def test_a_409_whose_detail_quotes_the_link_keeps_it_out_of_the_error(client):
    link, token = _link()
    responses.post(SHARE, json={"detail": f"Incident already shared: {link}"}, status=409)
    with pytest.raises(Conflict) as caught:
        client.share(7)
    _assert_clean(caught.value, link, token)
    assert "already shared" in str(caught.value)


@responses.activate
def test_a_409_in_plain_text_with_a_token_and_the_key_keeps_them_out(client):
    link, token = _link()
    responses.post(
        SHARE, body=f"conflict {link}?token={token} key {KEY} https://x.example/a?token={token}",
        status=409, content_type="text/plain",
    )
    with pytest.raises(Conflict) as caught:
        client.share(7)
    _assert_clean(caught.value, link, token, KEY)


def test_an_error_built_anywhere_is_scrubbed():
    link, token = _link()
    error = GitGuardianError(f"see {link} and /share/incidents/{token}", status=409,
                             method="POST", path="/v1/incidents/secrets/7/share")
    _assert_clean(error, link, token)
    assert str(error).startswith("POST /v1/incidents/secrets/7/share -> 409: see ")


def test_scrub_removes_links_tokens_and_given_secrets_only():
    link, token = _link()
    assert scrub(f"a {link} b", KEY) == "a [share link removed] b"
    assert scrub(f"?token={token}&x=1 {KEY}", KEY) == "?token=[removed]&x=1 [REDACTED]"
    ordinary = "409: incident already assigned to ada@corp.example (https://api.example/v1/x)"
    assert scrub(ordinary, KEY) == ordinary
