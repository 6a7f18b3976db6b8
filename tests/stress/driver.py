"""Run one playbook for real in this process, configured by the environment only.

    python -m tests.stress.driver <departed|auto-ignore|triage>

The crash tests start it as a child process and kill it with SIGKILL mid-run; the environment
(API URL and key, LDAP, git mirrors, ledger, PREFECT_API_URL) comes from the test.
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from tests.stress.conftest import run_flow

    state, _ = run_flow(argv[0])
    print(state.type.value, flush=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
