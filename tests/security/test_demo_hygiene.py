"""Secret hygiene of the demo (issue 8): `python -m flows.demo` run with a canary API key for its
sandbox and a canary LDAP password in its environment, Prefect's run logs at INFO (the session's
`shared_demo`, tests/fixtures/demo.py); afterwards neither shows in its output, the files it
wrote (ledger, reports, exports) or the runs, logs and artifacts its Prefect local mode stored."""
from __future__ import annotations

import pytest

from tests.fixtures import canary
from tests.security.test_whole_suite_hygiene import _file_text

pytestmark = [pytest.mark.slow]


def test_the_demo_leaves_no_canary_anywhere(shared_demo):
    done, out, home = shared_demo.done, shared_demo.out, shared_demo.home
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Done. Where to look next" in done.stdout

    places = {"the demo's output": done.stdout + done.stderr}
    files = [p for p in [*out.rglob("*"), *home.rglob("*")] if p.is_file()]
    for path in files:
        places[str(path.relative_to(shared_demo.root))] = _file_text(path)
    # The scan reads what matters: the ledger, the report, Prefect's run logs and artifacts.
    assert any(p.name == "ledger.sqlite" for p in files)
    assert any(p.name == "report.html" for p in files)
    database = places[str((home / "prefect.db").relative_to(shared_demo.root))]
    assert "\nlog: " in database and "\nartifact: " in database
    assert "applied" in done.stdout
    leaks = [f"{what} in {where}" for where, text in places.items()
             for what in canary.secrets_in(text)]
    assert not leaks, leaks
