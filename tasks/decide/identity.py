"""Who an e-mail address is: normalised comparison, bots and no-reply addresses. Pure."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from clients.directory import Lookup, Status

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


def by_normalised_address(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Re-key a mapping by normalised address; sorted first so that two spellings of one
    address resolve the same way whatever the input order."""
    result: dict[str, Any] = {}
    for key in sorted(mapping, key=str):
        result.setdefault(normalise_email(key), mapping[key])
    return result


def departed_addresses(directory: Mapping[str, Lookup]) -> frozenset[str]:
    """Every address (asked, primary, alias) of a person the directory marks as a leaver."""
    found: set[str] = set()
    for address, lookup in directory.items():
        if lookup.status is Status.DEPARTED:
            found.add(address)
            if lookup.person is not None:
                found.add(normalise_email(lookup.person.email))
                found.update(normalise_email(a) for a in lookup.person.aliases)
    found.discard("")
    return frozenset(found)
