"""A fresh clone elsewhere: the pull step points at that clone and every entrypoint loads there.

Only committed files are cloned, so a deployment that leans on an uncommitted file (or on the
developer's checkout path) fails here, not on the first worker of a new machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow

# Runs inside the clone: resolves the pull step as `prefect deploy` does, then loads each
# entrypoint by its file path as the worker's flow-run process does.
PROBE = r"""
import json, os, sys
from prefect.utilities.templating import apply_values
from prefect.flows import load_flow_from_entrypoint
from deployments import config

steps = apply_values(config.pull_steps(), os.environ)
directory = steps[0]["prefect.deployments.steps.set_working_directory"]["directory"]
flows = {}
for spec in config.load():
    flow = load_flow_from_entrypoint(spec.entrypoint)
    flows[spec.name] = [flow.name, os.path.realpath(flow.fn.__code__.co_filename)]
print(json.dumps({"directory": directory, "flows": flows}))
"""


def test_a_fresh_clone_deploys_its_own_code(tmp_path: Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "prefect.yaml",
                              "deployments/config.py"], cwd=ROOT, capture_output=True)
    if tracked.returncode != 0:
        pytest.fail("prefect.yaml and deployments/ must be committed for a clone to deploy")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    env = {"PATH": "/usr/bin:/bin", "PWD": str(clone), "HOME": str(tmp_path),
           "PREFECT_HOME": str(tmp_path / "prefect"), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "ERROR"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["directory"] == str(clone)
    from deployments import config

    assert set(found["flows"]) == {spec.name for spec in config.load(clone / "prefect.yaml")}
    for name, (_flow_name, source) in found["flows"].items():
        assert Path(source).is_relative_to(clone.resolve()), f"{name} loaded {source}"
