"""Errors a person can act on, in one line: what to fix, or what is down.

Two kinds, and the exit code each gives on the command line:
- `InputError` (exit 2): a parameter or a setting is wrong (a week not like `2026-W49`, a time
  zone that is not an IANA name, a missing or refused API key, a directory setting, a policy
  value); fix it and run again. A `ValueError`, so callers that caught the checks' own
  `ValueError`s still do.
- `Outage` (exit 1): something the run needs did not answer (GitGuardian, the directory, the
  ledger's database, another run holding the lease); run again later.

`classify(exc)` gives the exit code and the one line for these and for the exceptions the
clients and the write path raise for the same reasons (a 401, a missing scope, a refused bulk
request, an unreachable API, a plan above `max_actions`, ...); None for anything else, which is
a bug and keeps its traceback. `one_line_errors` wraps a flow's body so that a classified
error ends the run Failed with that line as its message, logged as one `error: ...` line, with
no traceback (the exception itself is the state's data). Plain Python: importing this module
imports neither Prefect nor the clients (the command line checks its input before Prefect
loads).
"""
from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

USAGE, OUTAGE = 2, 1


class InputError(ValueError):
    """A parameter or a setting is wrong: the message names it and what it accepts."""

    exit_code = USAGE


class Outage(RuntimeError):
    """Something the run needs did not answer: the message names it; nothing was written."""

    exit_code = OUTAGE


def pydantic_lines(exc: Any, options: Mapping[str, str] | None = None) -> list[str]:
    """A pydantic ValidationError as "field: message" lines (its messages list the accepted
    values of a choice: "Input should be 'unknown' or 'invalid'"), the offending value shown
    when it is short. `options` maps a top-level field to the name a person typed (`--week`)."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        head = (options or {}).get(loc[0], loc[0]) if loc else ""
        where = ".".join([head, *loc[1:]]) if loc else "value"
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        given = error.get("input")
        if error.get("type") not in ("missing", "value_error") and _short(given):
            message += f" (got {given!r})"
        lines.append(f"{where}: {message}")
    return lines or [str(exc)]


def _short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60


def classify(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one line) for an error a person can act on; None for anything else."""
    if isinstance(exc, (InputError, Outage)):
        return exc.exit_code, _line(exc)
    name = type(exc).__name__
    module = type(exc).__module__
    if name == "ValidationError" and module.startswith("pydantic"):
        lines = pydantic_lines(exc)
        return USAGE, "invalid value: " + "; ".join(lines)
    if name == "ZoneInfoNotFoundError":
        return USAGE, f"unknown time zone {exc}: give an IANA zone such as Europe/Paris or UTC"
    text = _line(exc)
    by_name: dict[str, tuple[int, str]] = {
        # the key and its scopes
        "AuthenticationError": (USAGE, "GitGuardian refused the API key (401): set a valid key "
                                       "in GITGUARDIAN_API_KEY or the Prefect Secret block "
                                       f"'gitguardian-api-key' ({text})"),
        "PermissionDenied": (USAGE, f"the API key may not do this (403): {text}; give the key "
                                    "the scope it needs"),
        "MissingScopes": (USAGE, text),
        # the request itself
        "RefusedRequest": (USAGE, text),
        "BlastRadiusExceeded": (USAGE, text),
        "LedgerNotShared": (USAGE, text),
        # what is down
        "ApiUnavailable": (OUTAGE, text),
        "ConnectionFailed": (OUTAGE, f"GitGuardian API unavailable: {text}. Nothing was written."),
        "ServerError": (OUTAGE, f"GitGuardian API unavailable: {text}. Nothing was written."),
        "RateLimited": (OUTAGE, f"GitGuardian API still rate-limiting after retries: {text}"),
        "DirectoryUnavailable": (OUTAGE, f"directory unavailable: {text}. Nothing was written."),
        "LeaseHeld": (OUTAGE, text),
    }
    return by_name.get(name)


def _line(exc: BaseException) -> str:
    """The exception's text on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a flow's body (under `@flow`, which still sees its signature and docstring): an
    error `classify` knows ends the run Failed with its line as the state's message, logged
    once at ERROR as `error: ...`, no traceback; the exception is the state's data (the
    command line gives its exit code). `NotApproved` ends the run Cancelled. In
    `runtime.plain()` every error is raised as it is."""

    @functools.wraps(fn)
    def body(*args: Any, **kwargs: Any) -> Any:
        from tasks import runtime

        try:
            return fn(*args, **kwargs)
        except NotApproved as exc:
            if runtime.is_plain():
                raise
            from prefect.states import Cancelled

            runtime.get_run_logger().warning("%s", exc)
            return Cancelled(message=str(exc))
        except Exception as exc:  # noqa: BLE001 - classified, or raised again as it was
            known = classify(exc)
            if known is None or runtime.is_plain():
                raise
            from prefect.states import Failed

            runtime.get_run_logger().error("error: %s", known[1])
            return Failed(message=known[1], data=exc)

    # Prefect reads the parameters' types from the signature: evaluated here, in the flow's
    # module (its annotations are strings under `from __future__ import annotations`).
    body.__signature__ = inspect.signature(fn, eval_str=True)  # type: ignore[attr-defined]
    body.__annotations__ = typing.get_type_hints(fn)
    return body


class NotApproved(Exception):
    """The plan above `max_actions` was declined: the run ends Cancelled, nothing written."""
