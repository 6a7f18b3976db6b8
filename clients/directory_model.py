"""What the directory adapter (clients/directory.py) speaks: the outcome types shared with the
decide layer (`Status`, `Person`, `Lookup`: keep their names and fields), the settings
(`DirectorySettings.from_env`, the password never printed) and the server-side LDAP filters.
Plain Python, no Prefect, no connection.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from ldap3.utils.conv import escape_filter_chars
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer


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


# ---------------------------------------------------------------------------------------------
# Settings

# Active Directory's bitwise AND matching rule (OpenLDAP calls it integerBitAndMatch).
BIT_AND_RULE = "1.2.840.113556.1.4.803"
DISABLED_FLAG = 2  # userAccountControl ACCOUNTDISABLE
# A plausible address: one @, no whitespace or control characters, a dotted domain.
_PLAUSIBLE_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f.]+$")
_MAX_EMAIL_LENGTH = 254


class DirectoryAttributes(BaseModel):
    """Which LDAP attributes hold what. Aliases absent from the server's schema are harmless."""

    model_config = ConfigDict(frozen=True)

    mail: str = "mail"
    aliases: tuple[str, ...] = ("mailAlternateAddress", "proxyAddresses")
    # Alias attributes whose values carry an address type prefix, AD style ("SMTP:a@b",
    # "smtp:a@b", "x500:..."): only smtp values count, without the prefix.
    typed_aliases: tuple[str, ...] = ("proxyAddresses",)
    manager: str = "manager"
    display_name: str = "displayName"
    account_control: str = "userAccountControl"


class DirectorySettings(BaseModel):
    """Where the directory is and how to read leavers from it. The password never prints."""

    model_config = ConfigDict(frozen=True)

    url: str = ""  # ldap://host[:port] or ldaps://host[:port]
    start_tls: bool = False
    ca_file: str | None = None  # CA bundle for ldaps/StartTLS; system default when None
    bind_dn: str = ""
    password: SecretStr = Field(default=SecretStr(""), repr=False)
    base_dn: str = ""
    person_filter: str = "(objectClass=person)"
    attributes: DirectoryAttributes = DirectoryAttributes()
    # Leaver rules: any one that matches marks the person as departed.
    disabled_bit: bool = True
    leavers_ou: str | None = None
    leaver_attribute: tuple[str, str] | None = ("employeeType", "former")
    lock_attribute: str | None = "pwdAccountLockedTime"
    page_size: int = Field(default=500, ge=1)
    batch_size: int = Field(default=100, ge=1, le=100)
    # Whole seconds: ldap3 packs the receive timeout into a socket option as an integer.
    connect_timeout: int = Field(default=5, ge=1)
    receive_timeout: int = Field(default=30, ge=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DirectorySettings:
        """LDAP_URL, LDAP_BIND_DN, LDAP_PASSWORD, LDAP_BASE_DN, LDAP_LEAVERS_OU, LDAP_START_TLS."""
        env = os.environ if environ is None else environ
        return cls(
            url=env.get("LDAP_URL", ""),
            bind_dn=env.get("LDAP_BIND_DN", ""),
            password=SecretStr(env.get("LDAP_PASSWORD", "")),
            base_dn=env.get("LDAP_BASE_DN", ""),
            leavers_ou=env.get("LDAP_LEAVERS_OU") or None,
            start_tls=env.get("LDAP_START_TLS", "").strip().lower() in ("1", "true", "yes"),
        )

    @field_serializer("password", when_used="always")
    def _mask_password(self, value: object) -> str:
        # Even a plain str copied in by model_copy(update=...) never leaves in a dump.
        return "**********" if value else ""

    def password_value(self) -> str:
        # Tolerates a plain str put in by model_copy(update=...), which skips validation.
        value = self.password
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value or "")

    def host_label(self) -> str:
        """Scheme, host and port only: safe for messages."""
        parts = urlsplit(self.url)
        if not parts.hostname:
            return "(no LDAP_URL)"
        try:
            port = parts.port
        except ValueError:  # a malformed port: name the host only
            port = None
        return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")


class DirectoryUnavailable(RuntimeError):
    """The directory cannot be reached or refused our bind: no answer can be trusted."""


def is_plausible_email(address: str) -> bool:
    return len(address) <= _MAX_EMAIL_LENGTH and bool(_PLAUSIBLE_EMAIL.match(address))


def disabled_filter(attribute: str = "userAccountControl") -> str:
    """Server-side form of the disabled-bit rule (AD and OpenLDAP both support the rule)."""
    return f"({attribute}:{BIT_AND_RULE}:={DISABLED_FLAG})"


def leaver_filter(settings: DirectorySettings) -> str:
    """Server-side filter for the attribute-based leaver rules (the leavers OU is a search base,
    not a filter). The adapter itself decides in Python from the entry; this is for operators."""
    parts = []
    if settings.disabled_bit:
        parts.append(disabled_filter(settings.attributes.account_control))
    if settings.leaver_attribute:
        name, value = settings.leaver_attribute
        parts.append(f"({name}={escape_filter_chars(value)})")
    if settings.lock_attribute:
        parts.append(f"({settings.lock_attribute}=*)")
    if not parts:
        return "(!(objectClass=*))"
    return parts[0] if len(parts) == 1 else "(|" + "".join(parts) + ")"


def address_filter(settings: DirectorySettings, addresses: Sequence[str]) -> str:
    """One OR filter over the mail and alias attributes; every value is escaped, so no address
    can add a filter component or a wildcard."""
    attrs = settings.attributes
    terms: list[str] = []
    for address in addresses:
        value = escape_filter_chars(address)
        terms.append(f"({attrs.mail}={value})")
        for alias in attrs.aliases:
            prefix = "smtp:" if alias in attrs.typed_aliases else ""
            terms.append(f"({alias}={prefix}{value})")
    return f"(&{settings.person_filter}(|{''.join(terms)}))"
