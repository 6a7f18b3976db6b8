"""Session-wide test settings and the real servers the tests talk to.

Each real part has its own fixture module under tests/fixtures, registered here:
the sandbox API over HTTP, a private slapd, a private PostgreSQL (the ledger on Postgres),
and a local Prefect server.
"""
import os
import tempfile

# Set before anything imports prefect: no telemetry, no ~/.prefect, quiet task logs.
_prefect_home = tempfile.mkdtemp(prefix="gg-tests-prefect-")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_HOME"] = _prefect_home
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# The demo and CLI subprocesses start Prefect's local server: 20 s is too short on a loaded
# 2-core machine (seen as "Timed out while attempting to connect to ephemeral Prefect API").
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
# Never talk to a real GitGuardian from tests, whatever the developer's shell exports.
for _name in ("GITGUARDIAN_API_KEY", "GITGUARDIAN_API_URL"):
    os.environ.pop(_name, None)

# Hypothesis' per-example deadline (200 ms) is a timed assertion: on a loaded 2-core machine a
# pure property test failed on it while its logic held. Speed is measured in benchmarks/.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("project", deadline=None)
_hypothesis_settings.load_profile("project")

pytest_plugins = [
    "tests.fixtures.canary",
    "tests.fixtures.demo",
    "tests.fixtures.prefect",
    "tests.fixtures.slapd",
    "tests.fixtures.postgres",
    "tests.fixtures.sandbox",
    "tests.fixtures.world",
]
