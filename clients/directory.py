"""Company directory adapter (LDAP through ldap3). Plain Python, no Prefect.

The outcome types, the settings and the filters are in clients/directory_model.py (the outcome
types are shared with the decide layer: keep their names and fields); they are re-exported here,
where callers import them from. This module holds the connection and the searches.
"""
from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ldap3 import (
    AUTO_BIND_NO_TLS,
    AUTO_BIND_TLS_BEFORE_BIND,
    BASE,
    MOCK_SYNC,
    NONE,
    SUBTREE,
    Connection,
    Server,
    Tls,
)
from ldap3.core.exceptions import LDAPException
from ldap3.utils.dn import parse_dn

from clients.directory_model import (
    BIT_AND_RULE,
    DISABLED_FLAG,
    DirectoryAttributes,
    DirectorySettings,
    DirectoryUnavailable,
    Lookup,
    Person,
    Status,
    address_filter,
    disabled_filter,
    is_plausible_email,
    leaver_filter,
)

__all__ = [
    "BIT_AND_RULE", "DISABLED_FLAG", "NO_SUCH_OBJECT", "SIZE_LIMIT_EXCEEDED", "Directory",
    "DirectoryAttributes", "DirectorySettings", "DirectoryUnavailable", "Lookup", "Person",
    "Status", "address_filter", "disabled_filter", "is_plausible_email", "leaver_filter",
]

# ---------------------------------------------------------------------------------------------
# LDAP result codes and controls

_PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
SIZE_LIMIT_EXCEEDED = 4
NO_SUCH_OBJECT = 32


def _normalise_dn(dn: str) -> str:
    try:
        return ",".join(f"{name.strip().lower()}={value.strip().lower()}"
                        for name, value, _ in parse_dn(dn))
    except Exception:  # an unparsable DN compares as itself
        return dn.strip().lower()


def _dn_within(dn: str, ancestor: str) -> bool:
    child, parent = _normalise_dn(dn), _normalise_dn(ancestor)
    return child.endswith("," + parent)


def _normalise(value: str) -> str:
    return value.strip().casefold()


# ---------------------------------------------------------------------------------------------
# The adapter

ConnectionFactory = Callable[[DirectorySettings], Connection]


def _ldap_connection(settings: DirectorySettings) -> Connection:
    parts = urlsplit(settings.url)
    if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
        raise DirectoryUnavailable(f"LDAP_URL must be ldap://host or ldaps://host, got "
                                   f"{settings.host_label()}")
    tls = None
    if parts.scheme == "ldaps" or settings.start_tls:
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
    server = Server(parts.hostname, port=parts.port, use_ssl=parts.scheme == "ldaps", tls=tls,
                    get_info=NONE, connect_timeout=settings.connect_timeout)
    return Connection(
        server,
        user=settings.bind_dn or None,
        password=settings.password_value() or None,
        auto_bind=AUTO_BIND_TLS_BEFORE_BIND if settings.start_tls else AUTO_BIND_NO_TLS,
        read_only=True,
        raise_exceptions=False,
        receive_timeout=settings.receive_timeout,
        check_names=False,
    )


@dataclass(frozen=True)
class _OfflineConnection:
    """Connection factory for ldap3's mock loaded from a JSON export (a class: picklable)."""

    json_path: Path

    def __call__(self, _: DirectorySettings) -> Connection:
        server = Server("offline-directory", get_info=NONE)
        connection = Connection(server, client_strategy=MOCK_SYNC, read_only=True,
                                raise_exceptions=False)
        connection.strategy.entries_from_json(str(self.json_path))
        connection.bind()
        return connection


@dataclass
class _Answer:
    entries: list[tuple[str, dict[str, list[str]]]]
    problem: str | None = None  # set when the answer is incomplete
    missing: bool = False  # the searched base does not exist


class Directory:
    """Answers "who is this address, and have they left?" for batches of addresses.

    Calls are serialised (one ldap3 connection, guarded by a lock). Results are cached for the
    instance's life; errors are not cached, so a later call may retry them.
    """

    def __init__(self, settings: DirectorySettings, *,
                 connection_factory: ConnectionFactory | None = None) -> None:
        self.settings = settings
        self._factory = connection_factory or _ldap_connection
        self._connection: Connection | None = None
        self._lock = threading.RLock()  # one ldap3 connection: one operation at a time
        self._by_email: dict[str, Lookup] = {}
        self._by_dn: dict[str, Lookup] = {}
        self.search_count = 0  # LDAP search operations sent (each page counts): benchmarks
        self.entries_read = 0  # entries the server returned: a widened search shows here

    def __repr__(self) -> str:
        return f"Directory({self.settings.host_label()}, base={self.settings.base_dn!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Task runners may pickle or hash their inputs: a socket cannot travel, the cache can.
        state = self.__dict__.copy()
        state["_connection"] = None
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    @classmethod
    def offline(cls, json_path: Path | str, settings: DirectorySettings | None = None) -> Directory:
        """A directory served by ldap3's mock from an export (ldap3 JSON: entries with dn, raw).

        For demos without a server. The mock's filters are case-insensitive equality, which is
        all the adapter sends; leaver rules are evaluated in Python as with a real server.
        """
        path = Path(json_path)
        settings = settings or DirectorySettings()
        if not settings.base_dn:
            settings = settings.model_copy(update={"base_dn": _common_suffix(path)})
        return cls(settings, connection_factory=_OfflineConnection(path))

    # -- connection ------------------------------------------------------------------------

    def _connect(self) -> Connection:
        if self._connection is not None:
            return self._connection
        try:
            connection = self._factory(self.settings)
            if not connection.bound and not connection.bind():
                raise DirectoryUnavailable(
                    f"directory at {self.settings.host_label()} refused the bind as "
                    f"{self.settings.bind_dn!r}: {connection.result.get('description')}"
                )
        except DirectoryUnavailable:
            raise
        except Exception as exc:  # ldap3 raises its own errors, OSError and more on connect
            raise DirectoryUnavailable(
                f"directory at {self.settings.host_label()} unavailable: "
                f"{self._scrub(f'{type(exc).__name__}: {exc}')}"
            ) from None  # the chained exception could carry connection details
        self._connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.unbind()
            except Exception:  # already broken: nothing to release
                pass

    def close(self) -> None:
        self._drop_connection()

    def __enter__(self) -> Directory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _scrub(self, text: str) -> str:
        password = self.settings.password_value()
        return text.replace(password, "***") if password else text

    # -- searching -------------------------------------------------------------------------

    def _attribute_names(self) -> list[str]:
        s, attrs = self.settings, self.settings.attributes
        names = [attrs.mail, *attrs.aliases, attrs.manager, attrs.display_name]
        if s.disabled_bit:
            names.append(attrs.account_control)
        if s.leaver_attribute:
            names.append(s.leaver_attribute[0])
        if s.lock_attribute:
            names.append(s.lock_attribute)  # operational in ppolicy: must be asked for by name
        return list(dict.fromkeys(names))

    def _search(self, base: str, search_filter: str, scope: str) -> _Answer:
        """All pages of one search. Never raises for LDAP result codes; connection trouble
        becomes a problem on the answer (and the connection is dropped for a fresh one)."""
        try:
            connection = self._connect()
        except DirectoryUnavailable as exc:
            return _Answer([], problem=str(exc))
        entries: list[tuple[str, dict[str, list[str]]]] = []
        cookie: bytes | None = None
        try:
            while True:
                self.search_count += 1
                connection.search(base, search_filter, scope, attributes=self._attribute_names(),
                                  paged_size=self.settings.page_size, paged_cookie=cookie)
                result = connection.result or {}
                for item in connection.response or []:
                    if item.get("type", "searchResEntry") == "searchResEntry" and "dn" in item:
                        self.entries_read += 1
                        entries.append((item["dn"], _values(item.get("attributes") or {})))
                code = result.get("result")
                if code == NO_SUCH_OBJECT and scope == BASE:
                    return _Answer([], missing=True)
                if code == SIZE_LIMIT_EXCEEDED:
                    # Partial results arrive without an exception: never read them as complete.
                    return _Answer(entries,
                                   problem="directory size limit exceeded: answer truncated")
                if code != 0:
                    return _Answer(entries, problem=f"search failed: {result.get('description')} "
                                                    f"(code {code})")
                control = (result.get("controls") or {}).get(_PAGED_RESULTS_OID) or {}
                cookie = (control.get("value") or {}).get("cookie")
                if not cookie:
                    return _Answer(entries)
        except (LDAPException, OSError) as exc:
            self._drop_connection()
            return _Answer(entries, problem=self._scrub(f"search failed: {type(exc).__name__}"))

    # -- entries ---------------------------------------------------------------------------

    def _person(self, dn: str, values: Mapping[str, list[str]]) -> Person:
        s, attrs = self.settings, self.settings.attributes

        def get(name: str) -> list[str]:
            return values.get(name.casefold(), [])

        mail_values = [_normalise(v) for v in get(attrs.mail) if v.strip()]
        aliases: list[str] = mail_values[1:]
        for name in attrs.aliases:
            for raw in get(name):
                if name in attrs.typed_aliases:
                    kind, sep, address = raw.partition(":")
                    if not sep or kind.strip().casefold() != "smtp":
                        continue  # x500:, sip:, ... are not e-mail addresses
                    raw = address
                if raw.strip():
                    aliases.append(_normalise(raw))
        email = mail_values[0] if mail_values else ""
        aliases = [a for a in dict.fromkeys(aliases) if a != email]

        markers: list[str] = []
        if s.leavers_ou and _dn_within(dn, s.leavers_ou):
            markers.append("leavers_ou")
        if s.leaver_attribute:
            name, wanted = s.leaver_attribute
            if any(_normalise(v) == _normalise(wanted) for v in get(name)):
                markers.append("employee_type")
        if s.disabled_bit and any(_has_disabled_flag(v) for v in get(attrs.account_control)):
            markers.append("disabled_bit")
        if s.lock_attribute and any(v.strip() for v in get(s.lock_attribute)):
            markers.append("locked")
        managers = [v for v in get(attrs.manager) if v.strip()]
        names = get(attrs.display_name)
        return Person(
            dn=dn, email=email, aliases=tuple(aliases),
            display_name=names[0] if names else "",
            manager_dn=managers[0] if managers else None,
            departed=bool(markers), leaver_markers=tuple(markers),
        )

    def _lookup_of(self, person: Person) -> Lookup:
        return Lookup(Status.DEPARTED if person.departed else Status.ACTIVE, person)

    # -- public ----------------------------------------------------------------------------

    def lookup(self, emails: Iterable[str],
               progress: Callable[[int, int], None] | None = None) -> dict[str, Lookup]:
        """One outcome per normalised address: ACTIVE, DEPARTED, UNKNOWN or ERROR.

        Raises DirectoryUnavailable when the directory cannot be reached at the start, so a
        caller stops before acting on anything. Later failures make the affected batch ERROR.
        `progress(done, total)`: called after each batch searched (addresses not cached).
        """
        with self._lock:
            return self._lookup(emails, progress)

    def _lookup(self, emails: Iterable[str],
                progress: Callable[[int, int], None] | None = None) -> dict[str, Lookup]:
        wanted = list(dict.fromkeys(_normalise(e) for e in emails))
        answers: dict[str, Lookup] = {}
        to_search: list[str] = []
        for address in wanted:
            if address in self._by_email:
                answers[address] = self._by_email[address]
            elif not is_plausible_email(address):
                answers[address] = Lookup(Status.UNKNOWN, detail="not a plausible e-mail address")
            else:
                to_search.append(address)
        if to_search:
            self._connect()  # raises DirectoryUnavailable: nothing is answered from an outage
        size = self.settings.batch_size
        for start in range(0, len(to_search), size):
            answers.update(self._lookup_batch(to_search[start:start + size]))
            if progress is not None:
                progress(min(start + size, len(to_search)), len(to_search))
        return {address: answers[address] for address in wanted}

    def _lookup_batch(self, batch: list[str]) -> dict[str, Lookup]:
        answer = self._search(self.settings.base_dn, address_filter(self.settings, batch), SUBTREE)
        if answer.problem:
            return {a: Lookup(Status.ERROR, detail=answer.problem) for a in batch}
        found: dict[str, list[Person]] = {}
        for dn, values in answer.entries:
            person = self._person(dn, values)
            self._by_dn[_normalise_dn(dn)] = self._lookup_of(person)
            for address in {person.email, *person.aliases}:
                found.setdefault(address, []).append(person)
        results: dict[str, Lookup] = {}
        for address in batch:
            people = found.get(address, [])
            if not people:
                results[address] = Lookup(Status.UNKNOWN, detail="no directory entry")
            elif len({p.dn for p in people}) > 1:
                # Two entries claim the address: choosing one could act on the wrong person.
                results[address] = Lookup(
                    Status.ERROR, detail=f"ambiguous: {len(people)} directory entries")
                continue
            else:
                results[address] = self._lookup_of(people[0])
            self._by_email[address] = results[address]
        return results

    def person_at(self, dn: str) -> Lookup:
        """The entry at a DN (a manager reference): UNKNOWN if it does not exist."""
        with self._lock:
            return self._person_at(dn)

    def _person_at(self, dn: str) -> Lookup:
        key = _normalise_dn(dn)
        if key in self._by_dn:
            return self._by_dn[key]
        answer = self._search(dn, "(objectClass=*)", BASE)
        if answer.problem:
            return Lookup(Status.ERROR, detail=answer.problem)
        if answer.missing or not answer.entries:
            lookup = Lookup(Status.UNKNOWN, detail="no entry at this DN")
        else:
            lookup = self._lookup_of(self._person(*answer.entries[0]))
        self._by_dn[key] = lookup
        return lookup

    def manager_chain(self, person: Person, depth: int = 2) -> list[Lookup]:
        """The person's manager, then that manager's manager, ... at most `depth` long.

        Stops early when an entry has no manager or the manager's entry does not exist (that
        step is left out); an ERROR step is included and ends the chain. Cycles end the chain.
        """
        chain: list[Lookup] = []
        seen = {_normalise_dn(person.dn)}
        current = person
        while len(chain) < depth and current.manager_dn:
            key = _normalise_dn(current.manager_dn)
            if key in seen:
                break
            seen.add(key)
            step = self.person_at(current.manager_dn)
            if step.status is Status.UNKNOWN:
                break
            chain.append(step)
            if step.person is None:
                break
            current = step.person
        return chain


def _values(attributes: Mapping[str, Any]) -> dict[str, list[str]]:
    """Attribute values as lists of str keyed by case-folded name (servers vary in case)."""
    out: dict[str, list[str]] = {}
    for name, value in attributes.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        texts = []
        for item in items:
            if isinstance(item, bytes):
                item = item.decode("utf-8", "replace")
            texts.append(str(item))
        out[name.casefold()] = texts
    return out


def _has_disabled_flag(value: str) -> bool:
    try:
        return bool(int(value.strip()) & DISABLED_FLAG)
    except ValueError:  # not a number: not a marker
        return False


def _common_suffix(json_path: Path) -> str:
    """The deepest DN suffix shared by all entries of an ldap3 JSON export."""
    entries = json.loads(json_path.read_text()).get("entries", [])
    split = [[part.strip() for part in e["dn"].split(",")] for e in entries if e.get("dn")]
    if not split:
        return ""
    suffix: list[str] = []
    for parts in zip(*(list(reversed(p)) for p in split)):
        if len({p.lower() for p in parts}) != 1:
            break
        suffix.insert(0, parts[0])
    return ",".join(suffix)
