"""The demo shows the SLA ladder: a dry run, then applied, its digests written to files (the
session's `shared_demo`: 300 incidents, seed 7)."""
from __future__ import annotations

import pytest

from tests.fixtures import canary
from tests.fixtures.demo import line

pytestmark = [pytest.mark.slow]


def test_the_demo_escalates_and_writes_the_digests_to_files(shared_demo):
    done = shared_demo.done
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stages = line(done.stdout, "stages applied")
    # Which rungs a small workspace holds at this hour varies (the sandbox's dates are fixed at
    # midnight, the demo runs now): owners and security at least.
    assert "approaching_" in stages and "escalated" in stages, stages
    sent = sorted((shared_demo.out / "digests" / "sent").rglob("*.txt"))
    would = sorted((shared_demo.out / "digests" / "dry-run").rglob("*.txt"))
    assert sent and [p.name for p in would] == [p.name for p in sent]
    assert "security.txt" in {p.name for p in sent}
    for path in sent + would:
        text = path.read_text()
        assert text.startswith("Subject: GitGuardian SLA") and not canary.secrets_in(text)
