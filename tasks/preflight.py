"""What is checked before a run fetches anything: its parameters, its settings and its key.

The command line calls these before Prefect is even imported (a bad `--week` answers in about
a second, not after a temporary Prefect server has started), and every flow calls them again
first thing (a deployment run gets the same one-line refusal). Each problem is one
`errors.InputError` (exit 2) naming what to set and what it accepts, or `errors.Outage` (exit 1)
when what is needed does not answer; nothing is written either way: no ledger file, no report
folder, no request beyond the token check.

Checked:
- GitGuardian: GITGUARDIAN_API_URL is an https URL (http on loopback only); a key is present
  (the Secret block `gitguardian-api-key`, else GITGUARDIAN_API_KEY; see `api_key` for the
  command line); the key works and holds the playbook's scopes (one GET /v1/api_tokens/self);
- the directory, for the playbooks that read it: LDAP_URL (ldap:// or ldaps://, with
  LDAP_BASE_DN, and a password when LDAP_BIND_DN is set) or DIRECTORY_JSON (an existing file);
- GIT_MIRRORS_ROOT (an existing folder, when set) and LEDGER_URL (a database URL whose driver
  is installed, when set);
- the weekly report's week (`2026-W49`), time zone (an IANA name), SLA days and trend weeks;
- a bulk request's own checks (`tasks.decide.bulk_remediation.check_request`).

Plain Python: no Prefect at import time.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tasks.errors import InputError, Outage
from tasks.secrets import API_KEY_BLOCK, LDAP_PASSWORD_BLOCK, secret_value

API_KEY_VARIABLE = "GITGUARDIAN_API_KEY"
API_URL_VARIABLE = "GITGUARDIAN_API_URL"

# The API scopes each playbook needs to write; a dry run needs only their read side.
SCOPES: dict[str, tuple[str, ...]] = {
    "departed-developer-reassignment": ("incidents:read", "incidents:write", "members:read"),
    "test-directory-auto-ignore": ("incidents:read", "incidents:write"),
    "commit-author-triage": ("incidents:read", "incidents:write", "members:read"),
    "sla-escalation": ("incidents:read", "incidents:write", "members:read"),
    "weekly-report": ("incidents:read", "members:read"),
}
# Playbooks that cannot run without a directory (bulk `to_manager` uses one when configured).
NEEDS_DIRECTORY = ("departed-developer-reassignment", "commit-author-triage", "sla-escalation")
SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")


class ApiUnavailable(Outage):
    """GitGuardian could not be reached (or answered only server errors) at the run's start."""


class MissingScopes(InputError):
    """The API key lacks a scope the playbook needs."""


# ------------------------------------------------------------------ a playbook, whole


def scopes_for(playbook: str, policy: Any = None, *, dry_run: bool = False) -> tuple[str, ...]:
    if playbook == "bulk-remediation":
        needed = tuple(policy.action.scopes)
    else:
        needed = SCOPES[playbook]
        if playbook == "commit-author-triage" and getattr(policy, "share_with_non_member_author",
                                                          False):
            needed += ("incidents:share",)
    return read_scopes(needed) if dry_run else needed


def read_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """A dry run writes nothing: it only needs the read side of each scope."""
    return tuple(dict.fromkeys(s.replace(":write", ":read").replace(":share", ":read")
                               for s in scopes))


def check_playbook_settings(playbook: str, policy: Any, *, max_actions: int,
                            command_line: bool = False) -> None:
    """Everything but the key: the request, the ledger, the directory, the git mirrors."""
    if isinstance(max_actions, bool) or not isinstance(max_actions, int) or max_actions < 0:
        raise InputError(f"max_actions must be a whole number, 0 or more (got {max_actions!r})")
    if playbook == "bulk-remediation":
        check_bulk_request(policy)
    ledger_url()
    if playbook in NEEDS_DIRECTORY:
        directory(required=True, command_line=command_line)
    elif (playbook == "bulk-remediation" and policy.action.kind == "assign"
          and policy.action.to_manager):
        directory(required=False, command_line=command_line)
    git_mirrors()


def check_playbook(playbook: str, policy: Any, *, dry_run: bool, max_actions: int,
                   command_line: bool = False) -> Any:
    """The settings, then the key and its scopes (one request). Returns the token."""
    check_playbook_settings(playbook, policy, max_actions=max_actions, command_line=command_line)
    client = quick_client(command_line=command_line)
    return check_token(client, scopes_for(playbook, policy, dry_run=dry_run))


def check_bulk_request(policy: Any) -> None:
    """`check_request`'s refusals as they are (RefusedRequest); a bad API filter, an InputError."""
    from tasks.decide.bulk_remediation import RefusedRequest, check_request

    try:
        check_request(policy)
    except RefusedRequest:
        raise
    except ValueError as exc:
        raise InputError(f"selection: {exc}") from exc


# ------------------------------------------------------------------ GitGuardian


def gitguardian_settings(environ: Mapping[str, str] | None = None) -> Any:
    """`GitGuardianSettings.from_env`, a malformed GITGUARDIAN_* number an InputError."""
    from pydantic import ValidationError

    from clients.gitguardian.settings import GitGuardianSettings

    try:
        return GitGuardianSettings.from_env(environ)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors(include_input=False, include_url=False))
        raise InputError(f"GitGuardian settings: {problems}") from None
    except ValueError as exc:
        raise InputError(str(exc)) from None


def api_url(environ: Mapping[str, str] | None = None) -> str:
    from clients.gitguardian import check_base_url

    try:
        return check_base_url(gitguardian_settings(environ).base_url)
    except ValueError as exc:
        raise InputError(f"{API_URL_VARIABLE}: {exc}") from None


def prefect_api_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when PREFECT_API_URL is set, in the environment or in the active Prefect profile
    (read from profiles.toml without importing Prefect)."""
    env = os.environ if environ is None else environ
    if env.get("PREFECT_API_URL"):
        return True
    home = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    active = env.get("PREFECT_PROFILE") or data.get("active") or ""
    profile = (data.get("profiles") or {}).get(active) or {}
    return bool(profile.get("PREFECT_API_URL"))


def _secret(block: str, variable: str, *, command_line: bool) -> str | None:
    """As `secrets.secret_value` (the Secret block first, else the variable), except on the
    command line with no Prefect server configured: then the variable only, since looking for
    a block would start a temporary Prefect server (10-20 s) to find none."""
    if command_line and not prefect_api_configured():
        return os.environ.get(variable) or None
    return secret_value(block, variable)


def _no_secret(block: str, variable: str, what: str) -> str:
    where = ("" if prefect_api_configured() else
             " on the Prefect server that PREFECT_API_URL names")
    return (f"no {what}: set {variable}, or save it as the Prefect Secret block '{block}' "
            f"(python -m deployments.setup){where}")


def api_key(*, command_line: bool = False) -> str:
    from clients.gitguardian import check_api_key

    value = _secret(API_KEY_BLOCK, API_KEY_VARIABLE, command_line=command_line)
    if not value:
        raise InputError(_no_secret(API_KEY_BLOCK, API_KEY_VARIABLE, "GitGuardian API key"))
    try:
        return check_api_key(value)
    except ValueError as exc:
        raise InputError(f"{exc} (from {API_KEY_VARIABLE} or the Secret block "
                         f"'{API_KEY_BLOCK}')") from None


def quick_client(*, command_line: bool = False) -> Any:
    """A client for the token check: the URL and key checked, one quick retry, no rate limiter
    (a run's own client, built by `settings.gitguardian_client`, keeps the full retries)."""
    from clients.gitguardian import GitGuardianClient
    from clients.retry import RetryPolicy

    url, key = api_url(), api_key(command_line=command_line)
    return GitGuardianClient(url, key, requests_per_minute=None, timeout=15,
                             retry=RetryPolicy(max_attempts=2, base_delay=0.1, max_delay=0.2))


def check_token(client: Any, required: Iterable[str],
                read: Callable[[], Any] | None = None) -> Any:
    """The key works and holds `required`: InputError (a refused key, a missing scope) or
    ApiUnavailable. Returns the token (its id tells our writes from a person's). `read`: how to
    get the token's description (default `client.token_info`; scoped runs: a cached one)."""
    from clients.gitguardian import (
        AuthenticationError,
        ConnectionFailed,
        InvalidResponse,
        RateLimited,
        ServerError,
    )
    from clients.models import missing_scopes  # the one scope rule

    where = getattr(client, "base_url", "")
    try:
        token = (read or client.token_info)()
    except AuthenticationError as exc:
        raise InputError(
            f"GitGuardian at {where} refused the API key ({exc.status}: {exc.detail}): set a "
            f"valid key in {API_KEY_VARIABLE} or the Prefect Secret block '{API_KEY_BLOCK}'"
        ) from None
    except (ConnectionFailed, ServerError, RateLimited, InvalidResponse) as exc:
        # The URL holds no key: say plainly which part is down.
        raise ApiUnavailable(
            f"GitGuardian API unavailable at {where}: {exc}. Nothing was written. "
            f"Check {API_URL_VARIABLE} and the network, or run again later."
        ) from None
    missing = missing_scopes(getattr(token, "scopes", None) or (), required)
    if missing:
        granted = ", ".join(sorted(getattr(token, "scopes", None) or ())) or "none"
        raise MissingScopes(
            f"the API key lacks the scope(s) {', '.join(missing)} this run needs (it has: "
            f"{granted}); use a key with them ({API_KEY_VARIABLE} or the Secret block "
            f"'{API_KEY_BLOCK}')"
        )
    return token


# ------------------------------------------------------------------ other settings


def ledger_url(environ: Mapping[str, str] | None = None) -> None:
    """LEDGER_URL, when set: a database URL whose driver is installed (nothing is created)."""
    env = os.environ if environ is None else environ
    raw = (env.get("LEDGER_URL") or "").strip()
    if not raw:
        return
    import sqlalchemy.exc
    from sqlalchemy.engine import make_url

    example = "e.g. sqlite:////srv/gg/ledger.sqlite or postgresql+psycopg://user@host/db"
    try:
        url = make_url(raw)
        dialect = url.get_dialect()
        dialect.import_dbapi()
    except sqlalchemy.exc.ArgumentError:
        raise InputError(f"LEDGER_URL is not a database URL ({example})") from None
    except sqlalchemy.exc.NoSuchModuleError:
        raise InputError(f"LEDGER_URL names an unknown database kind ({example})") from None
    except ModuleNotFoundError as exc:
        raise InputError(f"LEDGER_URL needs the database driver {exc.name!r}, not installed "
                         "(for Postgres: pip install psycopg, URL postgresql+psycopg://...)"
                         ) from None


def directory(*, required: bool, command_line: bool = False,
              environ: Mapping[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    url = (env.get("LDAP_URL") or "").strip()
    offline = (env.get("DIRECTORY_JSON") or "").strip()
    if url:
        parts = urlsplit(url)
        try:
            _ = parts.port
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise InputError(f"LDAP_URL must be ldap://host[:port] or ldaps://host[:port] "
                             f"(got {url!r})")
        if not (env.get("LDAP_BASE_DN") or "").strip():
            raise InputError("LDAP_BASE_DN is not set: the directory's search base, "
                             "e.g. dc=corp,dc=example")
        if environ is None and (env.get("LDAP_BIND_DN") or "").strip():
            if not _secret(LDAP_PASSWORD_BLOCK, "LDAP_PASSWORD", command_line=command_line):
                raise InputError(_no_secret(LDAP_PASSWORD_BLOCK, "LDAP_PASSWORD",
                                            "password for LDAP_BIND_DN"))
        return
    if offline:
        if not Path(offline).expanduser().is_file():
            raise InputError(f"DIRECTORY_JSON: no file at {offline} (an export made by "
                             "python -m sandbox, or unset it and set LDAP_URL)")
        return
    if required:
        raise InputError(
            "no directory configured: set LDAP_URL (with LDAP_BASE_DN, LDAP_BIND_DN and "
            f"LDAP_PASSWORD or the Secret block '{LDAP_PASSWORD_BLOCK}'), or DIRECTORY_JSON "
            "for an offline export"
        )


def git_mirrors(environ: Mapping[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    root = (env.get("GIT_MIRRORS_ROOT") or "").strip()
    if root and not Path(root).expanduser().is_dir():
        raise InputError(f"GIT_MIRRORS_ROOT: no folder at {root} (the folder holding a "
                         "clone of each source, <root>/<owner>/<name>)")


# ------------------------------------------------------------------ the weekly report

_WEEK = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE)


def week(text: str | None) -> str | None:
    """'2026-W49' (also 2026W49, 2026-w49) -> '2026-W49'; None stays None (the last week)."""
    if text is None:
        return None
    found = _WEEK.match(str(text))
    if found:
        year, number = int(found.group(1)), int(found.group(2))
        try:
            date.fromisocalendar(year, number, 1)
            return f"{year}-W{number:02d}"
        except ValueError:
            raise InputError(f"--week {text}: {year} has no ISO week {number} "
                             f"(its weeks are 01 to {_weeks_in(year)})") from None
    raise InputError(f"--week {text!r}: give an ISO week such as 2026-W49 (year, W, week number)")


def _weeks_in(year: int) -> int:
    return date(year, 12, 28).isocalendar()[1]


def timezone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = str(name or "").strip()
    try:
        if not text or text.startswith(("/", ".")) or ".." in text:
            raise ValueError(text)
        ZoneInfo(text)
        return text
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"--timezone {name!r} is not an IANA time zone: give one such as "
                         "Europe/Paris, America/New_York or UTC") from None


def sla_days(value: Any) -> dict[str, int | None] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError("--sla-days: give SEVERITY=DAYS pairs, e.g. critical=1,high=7,info=none")
    unknown = sorted(set(value) - set(SEVERITIES))
    if unknown:
        raise InputError(f"--sla-days: unknown severity {', '.join(unknown)} "
                         f"(accepted: {', '.join(SEVERITIES)})")
    for name, days in value.items():
        if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 0):
            raise InputError(f"--sla-days: {name}={days!r}: give whole days, 0 or more, "
                             "or none for no SLA")
    return value


def check_report(*, week_text: str | None, timezone_name: str, sla: Any, trend_weeks: Any,
                 output_dir: str, command_line: bool = False) -> Any:
    """The report's parameters and settings, then the key (one request). Returns the token."""
    week(week_text)
    timezone(timezone_name)
    sla_days(sla)
    if (isinstance(trend_weeks, bool) or not isinstance(trend_weeks, int)
            or not 1 <= trend_weeks <= 260):
        raise InputError("--trend-weeks must be a whole number from 1 to 260 "
                         f"(got {trend_weeks!r})")
    out = Path(output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--output-dir {output_dir}: a file is in the way (give a folder)")
    ledger_url()
    client = quick_client(command_line=command_line)
    return check_token(client, SCOPES["weekly-report"])
