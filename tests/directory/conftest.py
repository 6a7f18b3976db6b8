"""Directory tests run against the private slapd (tests/fixtures/slapd.py, registered in
tests/conftest.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.slapd import LEAVERS_OU, Slapd  # noqa: F401

PEOPLE_LDIF = (Path(__file__).parent / "people.ldif").read_text()


@pytest.fixture(scope="module")
def people(slapd: Slapd) -> Slapd:
    """The session slapd holding exactly this package's people (other suites load theirs)."""
    slapd.clear()
    slapd.load_ldif(PEOPLE_LDIF, exist_ok=False)
    return slapd
