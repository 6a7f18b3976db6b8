"""Company directory adapter (LDAP through ldap3). Plain Python, no Prefect.

The outcome types below are shared with the decide layer: keep their names and fields.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Status(str, Enum):
    ACTIVE = "active"
    DEPARTED = "departed"  # a positive leaver marker was found
    UNKNOWN = "unknown"  # the directory does not know this address
    ERROR = "error"  # the lookup failed: never read as a departure


@dataclass(frozen=True)
class Person:
    dn: str
    email: str  # primary address, normalised
    aliases: tuple[str, ...] = ()  # normalised
    display_name: str = ""
    manager_dn: str | None = None
    departed: bool = False
    leaver_markers: tuple[str, ...] = ()  # which rules matched: "leavers_ou", "employee_type", ...


@dataclass(frozen=True)
class Lookup:
    status: Status
    person: Person | None = None
    detail: str = ""
