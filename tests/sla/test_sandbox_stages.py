"""The sandbox's generated history holds incidents at every rung of the SLA ladder (the test
workspace and the demo's), by the shared SLA table and the default policy."""
from collections import Counter

import pytest

from tasks import sla
from tasks.decide.plan import Plan  # noqa: F401 - the decide's types load
from tasks.decide.sla_escalation import SlaEscalationPolicy, due_rung

POLICY = SlaEscalationPolicy()


def rungs(workspace):
    from datetime import datetime

    counts = Counter()
    for incident in workspace.incidents:
        days = sla.sla_days(incident["severity"])
        if incident["status"] in ("TRIGGERED", "ASSIGNED") and days is not None:
            opened = datetime.fromisoformat(incident["date"].replace("Z", "+00:00"))
            counts[due_rung(opened, workspace.now, days, POLICY)] += 1
    return counts


def test_the_test_workspace_has_every_rung(sandbox_workspace):
    found = rungs(sandbox_workspace)
    assert all(found[r] for r in POLICY.rungs), found


@pytest.mark.slow
def test_the_demo_workspace_has_every_rung():
    from sandbox.generator import generate

    found = rungs(generate(7, 2000))
    assert all(found[r] >= 5 for r in POLICY.rungs), found
