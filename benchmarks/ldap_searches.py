"""LDAP searches per 1,000 people: Directory.lookup against a real slapd. Prints; asserts nothing.

    .venv/bin/python -m benchmarks.ldap_searches                 # 1,000 addresses, 10k workspace
    .venv/bin/python -m benchmarks.ldap_searches --addresses 5000 --incidents 50000

A private slapd (started as the tests start theirs: tests/fixtures/slapd.py) is loaded with the
sandbox export's LDIF. The addresses looked up are every person's mail, then their alias
addresses, then addresses nobody holds, up to `--addresses` (a real run asks about people
who are and are not in the directory). Goal: at most 12 searches for 1,000 addresses (batches
of 100 in one OR filter each, plus paging). Manager chains of the departed are counted apart.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks import common

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def addresses_from(workspace: Any, wanted: int) -> tuple[list[str], dict[str, int]]:
    """Up to `wanted` addresses: mails, then aliases, then unknown ones; and the mix."""
    from sandbox.export import directory_entries

    mails: list[str] = []
    aliases: list[str] = []
    for _, attributes in directory_entries(workspace):
        mails += attributes.get("mail", [])
        aliases += attributes.get("mailAlternateAddress", [])
    chosen = list(dict.fromkeys(mails))[:wanted]
    chosen += [a for a in dict.fromkeys(aliases) if a not in chosen][: wanted - len(chosen)]
    unknown = [f"nobody.{n}@corp.example" for n in range(wanted - len(chosen))]
    mix = {"mail": min(len(mails), wanted), "alias": len(chosen) - min(len(mails), wanted),
           "unknown": len(unknown)}
    return chosen + unknown, mix


def main(argv: list[str] | None = None) -> int:
    parser = common.parser("benchmarks.ldap_searches", __doc__, incidents=10_000, seed=7)
    parser.add_argument("--addresses", type=int, default=1000)
    args = parser.parse_args(argv)

    from pydantic import SecretStr

    import sandbox
    from clients.directory import Directory, DirectorySettings, Status
    from sandbox.export import export
    from tests.fixtures.slapd import LEAVERS_OU, slapd_missing_reason, start_slapd

    reason = slapd_missing_reason()
    if reason:
        print(f"LDAP benchmark not run: {reason}")
        return 1
    workspace = sandbox.build_workspace(args.seed, args.incidents, None)
    root = Path(tempfile.mkdtemp(prefix="gg-bench-ldap-"))
    server = None
    try:
        export(workspace, root / "export")
        server = start_slapd(root / "slapd", size_limit=500)
        loaded = server.load_ldif((root / "export" / "directory.ldif").read_text())
        addresses, mix = addresses_from(workspace, args.addresses)
        settings = DirectorySettings(
            url=server.url, bind_dn=server.bind_dn, password=SecretStr(server.password),
            base_dn=server.base_dn, leavers_ou=LEAVERS_OU,
        )
        with Directory(settings) as directory:
            started = time.perf_counter()
            found = directory.lookup(addresses)
            lookup_seconds = time.perf_counter() - started
            lookup_searches, entries = directory.search_count, directory.entries_read
            departed = [v for v in found.values() if v.status is Status.DEPARTED and v.person]
            for lookup in departed:
                directory.manager_chain(lookup.person, depth=2)
            chain_searches = directory.search_count - lookup_searches
            again_before = directory.search_count
            directory.lookup(addresses)  # cached per run: a second pass should cost nothing
            cached_searches = directory.search_count - again_before
        outcomes = Counter(v.status.value for v in found.values())
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)

    result = {
        "addresses": len(addresses), "mix": mix, "entries_loaded": loaded,
        "lookup_searches": lookup_searches, "entries_read": entries,
        "lookup_seconds": round(lookup_seconds, 3), "outcomes": dict(outcomes),
        "departed": len(departed), "manager_chain_searches": chain_searches,
        "second_lookup_searches": cached_searches,
    }
    print(f"LDAP: {len(addresses)} addresses ({mix}) against slapd with {loaded} entries: "
          f"{lookup_searches} searches (goal <= 12), {entries} entries read, "
          f"{lookup_seconds:.2f} s; outcomes {dict(outcomes)}; manager chains (depth 2) of "
          f"{len(departed)} departed: {chain_searches} more searches; "
          f"second lookup of the same addresses: {cached_searches} searches", flush=True)
    common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
