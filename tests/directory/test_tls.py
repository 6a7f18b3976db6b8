"""ldaps:// and StartTLS against a slapd with a throwaway certificate; an untrusted one fails."""
from __future__ import annotations

import shutil

import pytest

from clients.directory import Directory, DirectoryUnavailable, Status
from tests.directory.test_lookup import settings_for
from tests.fixtures.slapd import Slapd, make_certificate

pytestmark = [pytest.mark.slapd,
              pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")]

PERSON = """dn: uid=tess.tls,ou=people,dc=corp,dc=example
objectClass: top
objectClass: person
objectClass: inetOrgPerson
uid: tess.tls
cn: Tess Tls
sn: Tls
mail: tess.tls@corp.example
"""


@pytest.fixture
def tls_server(slapd_factory) -> Slapd:
    server = slapd_factory(tls=True)
    server.load_ldif(PERSON)
    return server


@pytest.mark.parametrize("mode", ["ldaps", "start_tls"])
def test_encrypted_connections_answer(tls_server: Slapd, mode: str) -> None:
    if mode == "ldaps":
        settings = settings_for(tls_server, url=tls_server.ldaps_url, ca_file=tls_server.ca_file)
    else:
        settings = settings_for(tls_server, start_tls=True, ca_file=tls_server.ca_file)
    with Directory(settings) as directory:
        lookup = directory.lookup(["tess.tls@corp.example"])["tess.tls@corp.example"]
    assert lookup.status is Status.ACTIVE


def test_without_tls_this_server_refuses_the_bind(tls_server: Slapd) -> None:
    with pytest.raises(DirectoryUnavailable, match="confidentiality|refused|Bind"):
        Directory(settings_for(tls_server)).lookup(["tess.tls@corp.example"])


def test_an_untrusted_certificate_is_refused(tls_server: Slapd, tmp_path) -> None:
    other_ca = tmp_path / "other.crt"
    other_ca.write_bytes(make_certificate(tmp_path)[0].read_bytes())
    settings = settings_for(tls_server, url=tls_server.ldaps_url, ca_file=str(other_ca))
    with pytest.raises(DirectoryUnavailable) as raised:
        Directory(settings).lookup(["tess.tls@corp.example"])
    assert tls_server.password not in str(raised.value)
