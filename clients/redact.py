"""One scrubber for every text that may carry a secret: share links, `token=` values, the key.

Error texts built from a server's answer (GitGuardianError's detail and message), ledger rows and
anything else that may reach a log, an artifact or a flow result pass through `scrub`.
"""
from __future__ import annotations

import re

# A share link gives anyone the secret: with its host, or only its path.
_SHARE_URL = re.compile(r"(?:https?://[^\s\"'<>]*)?/share/[^\s\"'<>]*", re.IGNORECASE)
_TOKEN_PARAM = re.compile(r"(\btoken=)[^&\s\"'<>]+", re.IGNORECASE)
SHARE_LINK_REMOVED = "[share link removed]"
REDACTED = "[REDACTED]"


def scrub(text: str, *secrets: str) -> str:
    """The text without anything that looks like a share URL or a `token=` value, and without
    any of `secrets` (e.g. the API key) verbatim."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _SHARE_URL.sub(SHARE_LINK_REMOVED, text)
    return _TOKEN_PARAM.sub(r"\1[removed]", text)
