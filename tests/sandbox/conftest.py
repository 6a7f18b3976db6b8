# The sandbox fixtures (sandbox, fresh_sandbox, sandbox_workspace) are registered for the whole
# suite in tests/conftest.py.
