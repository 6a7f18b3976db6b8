"""Enrich tasks: what the directory and Git say about the people behind incidents.

Directory lookups are batched and cached by the adapter; one task run covers a whole run's
addresses. A directory that cannot be reached raises, which ends the run before any write.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from clients.directory import DirectoryUnavailable, Lookup, Status
from tasks.decide.evidence import COMMITTER_LOOKUP_ERROR, OWNER_LOOKUP_ERROR, Cause, Evidence
from tasks.decide.identity import is_bot_or_noreply, normalise_email
from tasks.progress import Progress
from tasks.runtime import task
from tasks.secrets import LDAP_PASSWORD_BLOCK, secret_value


def directory_from_settings() -> Any:
    """The LDAP directory named by LDAP_URL, or the sandbox's offline export (DIRECTORY_JSON)."""
    from clients.directory import Directory, DirectorySettings

    if os.environ.get("LDAP_URL"):
        settings = DirectorySettings.from_env()
        password = secret_value(LDAP_PASSWORD_BLOCK, "LDAP_PASSWORD")
        if password is not None:
            settings = settings.model_copy(update={"password": SecretStr(password)})
        return Directory(settings)
    if os.environ.get("DIRECTORY_JSON"):
        return Directory.offline(Path(os.environ["DIRECTORY_JSON"]), DirectorySettings.from_env())
    raise RuntimeError(
        "No directory configured: set LDAP_URL (with LDAP_BIND_DN, LDAP_PASSWORD, LDAP_BASE_DN) "
        "or DIRECTORY_JSON for an offline export."
    )


def git_from_settings() -> Any:
    from clients.git import GitRepositories

    root = os.environ.get("GIT_MIRRORS_ROOT")
    return GitRepositories(mirrors_root=Path(root) if root else None)


# No task retry: the adapter reconnects per call, and a refused bind or an outage ends the run
# before any write with its message; the next scheduled run tries again.
@task(name="lookup-people", cache_policy=NO_CACHE)
def lookup_people(directory: Any, emails: Iterable[str], *,
                  mid_run: bool = False) -> dict[str, Lookup]:
    """One answer per address. An unreachable directory raises, unless `mid_run` (the run has
    already read the directory): then every address is answered ERROR, so the decisions that
    needed them are skipped with their reason and the ones already known are not lost."""
    wanted = sorted({normalise_email(e) for e in emails if e and not is_bot_or_noreply(e)})
    if not wanted:
        return {}
    progress = Progress("directory lookups", unit="addresses")
    try:
        found = dict(directory.lookup(wanted, progress=progress.update))
        progress.finish()
        return found
    except DirectoryUnavailable as exc:
        if not mid_run:
            raise
        return {address: Lookup(Status.ERROR, detail=f"directory unavailable mid-run: {exc}")
                for address in wanted}


@task(name="manager-chains", cache_policy=NO_CACHE)
def manager_chains(
    directory: Any, lookups: Mapping[str, Lookup], depth: int
) -> dict[str, list[Lookup]]:
    chains: dict[str, list[Lookup]] = {}
    departed = [(email, lookup) for email, lookup in lookups.items()
                if lookup.status is Status.DEPARTED and lookup.person is not None]
    progress = Progress("managers of people who left", total=len(departed), unit="people")
    for done, (email, lookup) in enumerate(departed, 1):
        chains[email] = list(directory.manager_chain(lookup.person, depth=depth))
        progress.update(done)
    progress.finish()
    return chains


@task(name="owner-manager-chains", cache_policy=NO_CACHE)
def owner_manager_chains(
    directory: Any, lookups: Mapping[str, Lookup], owners: Iterable[str], depth: int
) -> dict[str, list[Lookup]]:
    """The manager chains of people still here (the SLA ladder's stage 2), nearest first.
    A chain step that fails is an ERROR lookup in it (the decide stops there)."""
    chains: dict[str, list[Lookup]] = {}
    for email in sorted({normalise_email(o) for o in owners}):
        lookup = lookups.get(email)
        if lookup is not None and lookup.status is Status.ACTIVE and lookup.person is not None:
            try:
                chains[email] = list(directory.manager_chain(lookup.person, depth=depth))
            except DirectoryUnavailable as exc:
                chains[email] = [Lookup(Status.ERROR, detail=f"directory unavailable: {exc}")]
    return chains


def _leaking_file(occurrences: Sequence[Any]) -> tuple[str, str] | None:
    """The source and path of the most recent occurrence that has both."""
    dated = [
        o for o in occurrences if o.filepath and getattr(o, "source", None) and o.source.full_name
    ]
    if not dated:
        return None
    latest = max(dated, key=lambda o: (o.date, o.id))
    return latest.source.full_name, latest.filepath


@task(name="file-owners", retries=0, cache_policy=NO_CACHE)
def file_owners(
    git: Any, occurrences_by_incident: Mapping[int, Sequence[Any]]
) -> tuple[dict[int, Evidence[list[str]]], dict[int, Evidence[list[str]]], list[str]]:
    """CODEOWNERS owners and recent committers of each incident's leaking file.

    Returns (owners by incident, committers by incident, problems), each listing as tri-state
    evidence: the addresses found (no: none), or unknown when the repository could not be read
    (missing clone, git failing or timing out), so that a decision never moves past a listing
    it could not see. One repository's problem stays its own incidents'.
    """
    owners: dict[int, Evidence[list[str]]] = {}
    committers: dict[int, Evidence[list[str]]] = {}
    problems: list[str] = []
    progress = Progress("leaking files' owners and committers",
                        total=len(occurrences_by_incident), unit="incidents")
    for done, (incident_id, occurrences) in enumerate(occurrences_by_incident.items(), 1):
        progress.update(done - 1)
        located = _leaking_file(occurrences)
        if located is None:
            continue
        full_name, path = located

        def problem(what: str, exc: Exception, incident_id: int = incident_id,
                    full_name: str = full_name) -> str:
            text = f"incident {incident_id}: {what}: {type(exc).__name__}: {exc}"[:300]
            problems.append(text)
            return f"The {what} of the leaking file in {full_name} could not be read " \
                   f"({type(exc).__name__})."

        try:
            owners[incident_id] = Evidence.yes([
                normalise_email(o) for o in git.codeowners(full_name, path)
                if "@" in o and not o.startswith("@")  # e-mail owners; @handles are not members
            ])
        except Exception as exc:  # noqa: BLE001 - one repository's problem stays its own
            owners[incident_id] = Evidence.unknown(
                OWNER_LOOKUP_ERROR, problem("CODEOWNERS", exc), _git_cause(exc))
        try:
            committers[incident_id] = Evidence.yes([
                normalise_email(a.email) for a in git.recent_committers(full_name, path)
            ])
        except Exception as exc:  # noqa: BLE001 - one repository's problem stays its own
            committers[incident_id] = Evidence.unknown(
                COMMITTER_LOOKUP_ERROR, problem("committers", exc), _git_cause(exc))
    progress.update(len(occurrences_by_incident))
    progress.finish()
    return owners, committers, problems


def _git_cause(exc: Exception) -> Cause:
    return Cause.TIMEOUT if "timed out" in str(exc) else Cause.ERROR
