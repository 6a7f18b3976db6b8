"""Offboarding benchmark: the requests of a bulk offboarding (every ASSIGNED incident of the
leavers to a named successor) both ways. Prints figures; asserts nothing.

    .venv/bin/python -m benchmarks.offboarding                       # 3000 incidents, seed 7
    .venv/bin/python -m benchmarks.offboarding --incidents 10000 --leavers 1 3 10

- member endpoint (the flow as it is): a `member` or `restricted` leaver's incidents listed on
  `GET /v1/members/{id}/secret-incidents` (the members are listed anyway for the assignment),
  a manager's or owner's with the assignee filter; a one-person selection's safety reads list
  with the assignee filter too;
- assignee filter (as before issue 20): one `GET /v1/incidents/secrets?assignee_email=...`
  listing per leaver, and safety reads listing each chunk's date window of ASSIGNED incidents
  (the earlier `BulkSelection.listings` and `read_filters` patched back in for this run only).

Each run is a real run (plain mode: the flow's body without Prefect; the requests are the
same), on the sandbox put back to its generated state first. Leavers are the `member` and
`restricted` members holding the most ASSIGNED incidents; a last row offboards a manager.
"""
from __future__ import annotations

import math
import os
import pickle
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

from benchmarks import common

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

common.quiet_prefect("WARNING")

LISTING = "GET /v1/incidents/secrets"
MEMBER_LISTING = "GET /v1/members/{id}/secret-incidents"
READ_ONE = "GET /v1/incidents/secrets/{id}"


def offboard(box: Any, initial: bytes, emails: list[str], successor: str, folder: Path,
             label: str, *, assignee_filter_only: bool) -> dict[str, Any]:
    from flows.bulk_remediation import bulk_remediation
    from tasks import runtime
    from tasks.decide.bulk_remediation import BulkAction, BulkRequest, BulkSelection

    box.store.restore(pickle.loads(initial))
    os.environ["LEDGER_URL"] = f"sqlite:///{folder / (label + '.sqlite')}"
    policy = BulkRequest(selection=BulkSelection(status=["ASSIGNED"], assignee_emails=emails),
                         action=BulkAction(kind="assign", assignee_email=successor),
                         reason="Offboarding benchmark")
    patches = []
    if assignee_filter_only:
        patches = [
            mock.patch.object(BulkSelection, "listings", lambda self, members=None: [
                (None, query) for query in self.api_queries()]),
            mock.patch.object(BulkSelection, "read_filters", lambda self: {}),
        ]
    for patch in patches:
        patch.start()
    try:
        with runtime.plain():
            return bulk_remediation.fn(policy=policy, dry_run=False, max_actions=100_000)
    finally:
        for patch in patches:
            patch.stop()


def main(argv: list[str] | None = None) -> int:
    parser = common.parser("benchmarks.offboarding", __doc__, incidents=3000, seed=7,
                           figures=False)
    parser.add_argument("--leavers", type=int, nargs="+", default=[1, 3],
                        help="how many member/restricted leavers per run (default: 1 3)")
    args = parser.parse_args(argv)

    import sandbox

    os.environ["GITGUARDIAN_REQUESTS_PER_MINUTE"] = "0"
    os.environ.pop("LDAP_URL", None)
    os.environ.pop("DIRECTORY_JSON", None)
    folder = Path(tempfile.mkdtemp(prefix="gg-bench-offboarding-"))
    with sandbox.running(seed=args.seed, incidents=args.incidents) as box:
        os.environ["GITGUARDIAN_API_URL"], os.environ["GITGUARDIAN_API_KEY"] = box.url, box.token
        initial = pickle.dumps(box.state())
        store = box.store
        held = Counter(i["assignee_id"] for i in store.incidents.values()
                       if i["status"] == "ASSIGNED")
        active = [m for m in store.members.values() if m.get("active", True)]
        ranked = sorted(active, key=lambda m: (-held[m["id"]], m["id"]))
        ordinary = [m for m in ranked if m["access_level"] in ("member", "restricted")]
        manager = next(m for m in ranked if m["access_level"] == "manager")
        successor = next(m["email"] for m in ranked if m["access_level"] == "owner")
        assigned = sum(held.values())
        print(f"sandbox: {args.incidents} incidents (seed {args.seed}), {assigned} ASSIGNED, "
              f"{len(store.members)} members (member list: "
              f"{math.ceil(len(store.members) / 100)} requests)")
        scenarios = [(f"{n} member/restricted", ordinary[:n]) for n in args.leavers]
        scenarios.append(("1 manager", [manager]))
        header = (f"{'leavers':22} {'incidents':>9} {'way':16} {'listings':>8} "
                  f"{'member ep.':>10} {'reads':>6} {'writes':>6} {'total':>6}")
        print(header)
        for name, leavers in scenarios:
            emails = [m["email"] for m in leavers]
            count = sum(held[m["id"]] for m in leavers)
            for way, only in (("assignee filter", True), ("member endpoint", False)):
                label = f"{name}-{way}".replace(" ", "-").replace("/", "-")
                result = offboard(box, initial, emails, successor, folder, label,
                                  assignee_filter_only=only)
                requests = result["requests"]
                writes = sum(v for k, v in requests.items() if k.startswith("POST"))
                print(f"{name:22} {count:>9} {way:16} {requests.get(LISTING, 0):>8} "
                      f"{requests.get(MEMBER_LISTING, 0):>10} {requests.get(READ_ONE, 0):>6} "
                      f"{writes:>6} {sum(requests.values()):>6}")
    print("listings: GET /v1/incidents/secrets (selection and batched safety reads); member ep.: "
          "GET /v1/members/{id}/secret-incidents; reads: one incident each; total includes the "
          "token, members and audit-log requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
