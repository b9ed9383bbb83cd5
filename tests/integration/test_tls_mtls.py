"""Client certificates: --ssl-cert-reqs 2 (required) and 1 (optional) with --ssl-ca-certs.

* A client with a certificate the CA signed gets in; the app sees its chain (leaf
  first, the leaf is the client's PEM) and its RFC 4514 subject in
  scope["extensions"]["tls"], over https and wss.
* Required: no certificate, a certificate from another CA, an expired certificate:
  the handshake fails on the client's side with the alert that says why
  (certificate_required / handshake_failure, unknown_ca, certificate_expired), the
  server keeps serving
  a good client, and the SIGUSR1 stats line counts the failures.
* Optional: a client without a certificate connects (chain [], name None); a
  certificate that fails verification still fails the handshake.

Both TLS versions are checked: with TLS 1.3 the client's handshake ends before the
server has verified its certificate, so the refusal shows at the client's first read.
"""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest

import wsclient
from conftest import serving
from rawhttp import server_stats
from tls_certs import certs, pem_der  # noqa: F401 (certs is a fixture)
from tlsclient import HOST, TlsConnection, client_context, refused, server_flags

APP = "tls_app:app"
VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
BAD_CLIENTS = ["no-cert", "wrong-ca", "expired"]


def expected_alert(who: str, version: ssl.TLSVersion) -> str:
    """The alert the server's refusal carries (the end of the client's error reason):
    TLS 1.3 has its own alert for a missing certificate, TLS 1.2 a plain failure."""
    if who == "no-cert":
        return "CERTIFICATE_REQUIRED" if version == ssl.TLSVersion.TLSv1_3 else "HANDSHAKE_FAILURE"
    return {"wrong-ca": "UNKNOWN_CA", "expired": "CERTIFICATE_EXPIRED"}[who]


def _ctx(certs, who: str, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    cert = {"good": (certs.client, certs.client_key), "no-cert": (None, None),
            "wrong-ca": (certs.wrong_ca_client, certs.wrong_ca_client_key),
            "expired": (certs.expired, certs.expired_key)}[who]
    return client_context(certs, version=version, cert=cert[0], key=cert[1])


@pytest.fixture(scope="module")
def required(certs):
    yield from serving(APP, *server_flags(certs, "--ssl-cert-reqs", "2", "--ssl-ca-certs", str(certs.ca)))


@pytest.fixture(scope="module")
def optional(certs):
    yield from serving(APP, *server_flags(certs, "--ssl-cert-reqs", "1", "--ssl-ca-certs", str(certs.ca)))


def check_client_seen(tls: dict, certs) -> None:
    chain = tls["client_cert_chain"]
    assert chain, tls
    assert ssl.PEM_cert_to_DER_cert(chain[0]) == pem_der(certs.client), chain[0]
    assert "CN=client-1" in tls["client_cert_name"] and "O=narwhal-tests" in tls["client_cert_name"], tls
    assert tls["client_cert_error"] is None


def failures(server) -> int:
    return server_stats(server)["tls_handshake_failures"]


# --- required --------------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_required_good_client_is_seen_by_the_app(required, certs, version):
    with TlsConnection(required.addr, _ctx(certs, "good", version)) as conn:
        info = conn.get_json()
        assert conn.tls.version() == version.name.replace("_", ".")
    assert info["scheme"] == "https"
    check_client_seen(info["tls"], certs)
    assert ssl.PEM_cert_to_DER_cert(info["tls"]["server_cert"]) == pem_der(certs.server)


def test_required_good_client_over_wss(required, certs):
    async def run() -> dict:
        async with wsclient.connect(f"wss://{HOST}:{required.port}/", ssl=_ctx(certs, "good")) as ws:
            info = json.loads(await ws.recv())
            await ws.send("ping")
            assert await ws.recv() == "ping"
            return info

    info = asyncio.run(run())
    assert info["scheme"] == "wss"
    check_client_seen(info["tls"], certs)


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
@pytest.mark.parametrize("who", BAD_CLIENTS)
def test_required_refuses_and_keeps_serving(required, certs, who, version):
    before = failures(required)
    error = refused(required.addr, _ctx(certs, who, version))
    assert error.reason.endswith(expected_alert(who, version)), error
    # The server still serves a good client on a new connection...
    with TlsConnection(required.addr, _ctx(certs, "good", version)) as conn:
        check_client_seen(conn.get_json()["tls"], certs)
    # ...and counted the refused handshake.
    assert failures(required) >= before + 1, required.log()[-2000:]


def test_required_many_refusals_are_all_counted(required, certs):
    before = failures(required)
    errors = [refused(required.addr, _ctx(certs, who, version)) for who in BAD_CLIENTS for version in VERSIONS]
    assert all(isinstance(e, ssl.SSLError) for e in errors), errors
    with TlsConnection(required.addr, _ctx(certs, "good")) as conn:
        check_client_seen(conn.get_json()["tls"], certs)
    assert failures(required) >= before + len(errors), errors
    assert required.proc.poll() is None


# --- optional --------------------------------------------------------------------------

def test_optional_without_certificate_connects(optional, certs):
    with TlsConnection(optional.addr, _ctx(certs, "no-cert")) as conn:
        tls = conn.get_json()["tls"]
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None, tls
    assert tls["client_cert_error"] is None


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_optional_with_good_certificate_is_seen(optional, certs, version):
    with TlsConnection(optional.addr, _ctx(certs, "good", version)) as conn:
        check_client_seen(conn.get_json()["tls"], certs)


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
@pytest.mark.parametrize("who", ["wrong-ca", "expired"])
def test_optional_still_refuses_a_bad_certificate(optional, certs, who, version):
    before = failures(optional)
    error = refused(optional.addr, _ctx(certs, who, version))
    assert error.reason.endswith(expected_alert(who, version)), error
    with TlsConnection(optional.addr, _ctx(certs, "no-cert", version)) as conn:
        assert conn.get_json()["tls"]["client_cert_chain"] == []
    assert failures(optional) >= before + 1
