"""Who an e-mail address is: normalised comparison, bots and no-reply addresses. Pure."""
from __future__ import annotations

import re

# Commit e-mails that are never a person to assign: GitHub's no-reply and bot addresses,
# generic no-reply local parts, and CI identities.
_NOREPLY_DOMAINS = ("users.noreply.github.com", "noreply.github.com", "noreply.gitlab.com")
_NOREPLY_LOCAL = re.compile(r"^(no-?reply|do-?not-?reply|donotreply)([+._-].*)?$")
_BOT_MARKERS = re.compile(r"(\[bot\]|(^|[._+-])bot([._+-]|$)|^ci[._-]|^jenkins|^github-actions)")


def normalise_email(value: str | None) -> str:
    """Trimmed and case-folded; '' for None. Addresses are compared by equality only."""
    return (value or "").strip().casefold()


def is_bot_or_noreply(email: str | None, name: str | None = None) -> bool:
    address = normalise_email(email)
    if not address or "@" not in address:
        return True  # no usable address is never an assignee
    local, _, domain = address.rpartition("@")
    if domain in _NOREPLY_DOMAINS or domain.endswith(".noreply.github.com"):
        return True
    if _NOREPLY_LOCAL.match(local):
        return True
    if _BOT_MARKERS.search(local):
        return True
    return bool(name and "[bot]" in name.casefold())
