# pytest refuses `pytest_plugins` outside the root conftest, so the sandbox fixtures are
# imported here until tests/conftest.py registers "tests.fixtures.sandbox".
from tests.fixtures.sandbox import fresh_sandbox, sandbox, sandbox_workspace  # noqa: F401
