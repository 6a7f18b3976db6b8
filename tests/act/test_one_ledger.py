"""A set-up that cannot exclude is refused: deployment runs of one playbook on one workspace
must take their lease in one ledger (checked through a Prefect Variable on the real server)."""
from __future__ import annotations

import pytest

from clients.ledger import Ledger
from tasks.playbook import LEDGERS_VARIABLE, LedgerNotShared, check_one_ledger

pytestmark = [pytest.mark.prefect]


@pytest.fixture
def clean_variable(prefect_server):
    from prefect.variables import Variable

    Variable.unset(LEDGERS_VARIABLE)
    yield
    Variable.unset(LEDGERS_VARIABLE)


def test_two_workers_with_their_own_sqlite_ledgers_are_refused(clean_variable, tmp_path):
    first = Ledger(f"sqlite:///{tmp_path / 'host-a' / 'ledger.sqlite'}")
    second = Ledger(f"sqlite:///{tmp_path / 'host-b' / 'ledger.sqlite'}")
    check_one_ledger("pb@https://api.example#1", first)  # recorded
    check_one_ledger("pb@https://api.example#1", first)  # the same ledger: fine
    with pytest.raises(LedgerNotShared) as refused:
        check_one_ledger("pb@https://api.example#1", second)
    text = str(refused.value)
    assert "cannot exclude each other" in text and "nothing was written" in text
    assert "LEDGER_URL" in text
    check_one_ledger("other@https://api.example#1", second)  # another lease: its own record


def test_the_recorded_ledger_never_holds_a_password(clean_variable):
    from prefect.variables import Variable

    url = "postgresql+psycopg://gg:not-a-real-password@db.internal/ledger"
    check_one_ledger("pb@https://api.example#1", Ledger(url))
    recorded = Variable.get(LEDGERS_VARIABLE)
    assert "not-a-real-password" not in str(recorded) and "db.internal" in str(recorded)
