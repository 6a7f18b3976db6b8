"""The write path's tests against a live sandbox: a client, a ledger and a run for each test."""
from __future__ import annotations

import pytest

from clients.ledger import Ledger


@pytest.fixture
def world(fresh_sandbox, tmp_path):
    """(sandbox, client, ledger, run id): a fresh sandbox and an empty SQLite ledger."""
    from clients.gitguardian import GitGuardianClient

    client = GitGuardianClient(fresh_sandbox.url, fresh_sandbox.token, requests_per_minute=None)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    run_id = ledger.start_run("test", dry_run=False, parameters={})
    return fresh_sandbox, client, ledger, run_id
