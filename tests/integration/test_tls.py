"""HTTPS and WSS through real clients (httpx, curl, Python ssl, websockets) against the
real binary started with --ssl-certfile/--ssl-keyfile.

* scope["scheme"] is https / wss and scope["extensions"]["tls"] describes the
  connection: the server certificate is the PEM file's, tls_version and cipher_suite
  are what the client negotiated (by IANA id); a plain server's scopes have no "tls".
* Keep-alive over TLS (httpx and curl reuse one connection for several requests),
  a chunked response, 50 MB uploads (Content-Length from curl, chunked from httpx)
  hashed by the app, WebSocket messages over wss.
* TLS 1.2-only and 1.3-only clients both connect; with --ssl-min-version TLSv1.3 a
  1.2-only client is refused. Session resumption works on both versions, seen from
  the client (SSLSocket.session_reused). ALPN selects http/1.1.

App: apps/tls_app.py (`tls_app:app`). Certificates: tls_certs.py, made per session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import subprocess

import httpx
import pytest

import wsclient
from conftest import serving
from tls_certs import PASSWORD, certs, pem_der  # noqa: F401 (certs is a fixture)
from tlsclient import (HOST, IANA_SUITES, TLS_VERSIONS, TlsConnection, client_context, refused,
                       server_flags)

APP = "tls_app:app"
GUARD = 120.0  # a failure guard for 50 MB through TLS on a busy machine, not a pace
MIB = 1024 * 1024
VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


@pytest.fixture(scope="module")
def server(certs):
    yield from serving(APP, *server_flags(certs))


def url(server, path: str = "/info") -> str:
    return f"https://{HOST}:{server.port}{path}"


def check_tls_extension(info: dict, certs, sock: ssl.SSLSocket) -> None:
    """The app's view of the connection agrees with the certificate file and the client."""
    tls = info["tls"]
    assert tls is not None and "tls" in info["extension_keys"], info
    assert ssl.PEM_cert_to_DER_cert(tls["server_cert"]) == pem_der(certs.server)
    assert tls["server_cert"].strip() == certs.server.read_text().strip()
    assert tls["tls_version"] == TLS_VERSIONS[sock.version()], (tls["tls_version"], sock.version())
    name = sock.cipher()[0]
    assert name in IANA_SUITES, f"the client negotiated {name}, not an ECDHE+AEAD suite"
    assert tls["cipher_suite"] == IANA_SUITES[name], (hex(tls["cipher_suite"]), name)
    assert (tls["client_cert_chain"], tls["client_cert_name"], tls["client_cert_error"]) == ([], None, None)


# --- scope -----------------------------------------------------------------------------

def test_ready_line_says_https(server):
    assert server.scheme == "https", server.log()


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_scope_scheme_and_tls_extension_match_the_client(server, certs, version):
    with TlsConnection(server.addr, client_context(certs, version=version)) as conn:
        assert conn.tls.version() == version.name.replace("_", ".")
        info = conn.get_json()
        assert info["scheme"] == "https"
        check_tls_extension(info, certs, conn.tls)


def test_plain_server_has_no_tls_key(narwhal):
    server = narwhal(APP)
    assert server.scheme == "http"
    info = httpx.get(f"{server.url}/info", timeout=GUARD).json()
    assert info["scheme"] == "http"
    assert "tls" not in info["extension_keys"] and info["tls"] is None, info

    async def ws() -> dict:
        async with wsclient.connect(f"ws://{server.host}:{server.port}/") as sock:
            return json.loads(await sock.recv())

    info = asyncio.run(ws())
    assert info["scheme"] == "ws"
    assert "tls" not in info["extension_keys"], info


# --- real HTTP clients -----------------------------------------------------------------

def test_httpx_keep_alive_reuses_one_connection(server, certs):
    with httpx.Client(verify=client_context(certs), timeout=GUARD) as client:
        infos = [client.get(url(server)).json() for _ in range(5)]
    assert all(i["scheme"] == "https" and i["tls"] for i in infos), infos
    # The client's port is the connection's identity: one port, one connection.
    assert len({tuple(i["client"]) for i in infos}) == 1, [i["client"] for i in infos]


def test_raw_keep_alive_many_requests_one_handshake(server, certs):
    with TlsConnection(server.addr, client_context(certs)) as conn:
        infos = [conn.get_json() for _ in range(20)]
        assert infos[0]["client"][1] == conn.local_port
    assert len({tuple(i["client"]) for i in infos}) == 1


def curl(*args: str, timeout: float = GUARD) -> subprocess.CompletedProcess:
    proc = subprocess.run(["curl", "-sS", "--noproxy", "*", *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"curl {args} failed ({proc.returncode}): {proc.stderr}"
    return proc


def test_curl_reuses_the_connection(server, certs):
    mark = "\n@@curl "
    proc = curl("--cacert", str(certs.ca), "-w", mark + "%{num_connects} %{scheme} %{http_version}\n",
                url(server), url(server), url(server))
    parts = proc.stdout.split(mark)
    bodies = [json.loads(parts[0])] + [json.loads(p.split("\n", 1)[1]) for p in parts[1:-1]]
    stats = [p.split("\n", 1)[0].split() for p in parts[1:]]
    assert [s[0] for s in stats] == ["1", "0", "0"], proc.stdout  # one connect, then reuse
    assert all(s[1].lower() == "https" and s[2] == "1.1" for s in stats), stats
    assert len({tuple(b["client"]) for b in bodies}) == 1, bodies
    assert all(b["scheme"] == "https" for b in bodies)


def test_chunked_response_over_tls(server, certs):
    n, size = 64, 10_000
    with TlsConnection(server.addr, client_context(certs)) as conn:
        conn.send(b"GET /chunked?n=%d&size=%d HTTP/1.1\r\nHost: test\r\n\r\n" % (n, size))
        resp = conn.read_response()
        assert resp.status == 200 and resp.chunked and resp.complete, resp.raw_head
        assert resp.body == bytes(i % 251 for i in range(n * size))
        assert conn.get_json()["scheme"] == "https"  # the connection is still usable
    with httpx.Client(verify=client_context(certs), timeout=GUARD) as client:
        r = client.get(url(server, f"/chunked?n={n}&size={size}"))
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.content == resp.body


def test_curl_uploads_50_mb(server, certs, tmp_path):
    data = os.urandom(50 * MIB)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    proc = curl("--cacert", str(certs.ca), "--data-binary", f"@{path}", "-H", "content-type: application/octet-stream",
                url(server, "/hash"))
    assert json.loads(proc.stdout) == {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_httpx_uploads_50_mb_chunked(server, certs):
    block = os.urandom(MIB)
    digest = hashlib.sha256()
    for i in range(50):
        digest.update(bytes([i]) + block[1:])

    def body():  # a generator: httpx sends it with Transfer-Encoding: chunked
        for i in range(50):
            yield bytes([i]) + block[1:]

    with httpx.Client(verify=client_context(certs), timeout=GUARD) as client:
        r = client.post(url(server, "/hash"), content=body())
        assert r.status_code == 200, r.text
        assert r.json() == {"length": 50 * MIB, "sha256": digest.hexdigest()}
        assert client.get(url(server)).json()["scheme"] == "https"


# --- WebSocket over TLS ----------------------------------------------------------------

def test_wss_scope_and_echo(server, certs):
    big = os.urandom(512 * 1024)

    async def run():
        ctx = client_context(certs, alpn=None)
        async with wsclient.connect(f"wss://{HOST}:{server.port}/chat", ssl=ctx, max_size=None) as ws:
            info = json.loads(await ws.recv())
            sock = ws.transport.get_extra_info("ssl_object")
            await ws.send("hello over tls")
            text = await ws.recv()
            await ws.send(big)
            echoed = await ws.recv()
            return info, sock.version(), sock.cipher()[0], text, echoed

    info, version, cipher, text, echoed = asyncio.run(run())
    assert info["type"] == "websocket" and info["scheme"] == "wss"
    tls = info["tls"]
    assert ssl.PEM_cert_to_DER_cert(tls["server_cert"]) == pem_der(certs.server)
    assert tls["tls_version"] == TLS_VERSIONS[version]
    assert tls["cipher_suite"] == IANA_SUITES[cipher]
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
    assert text == "hello over tls"
    assert echoed == big


# --- versions, resumption, ALPN --------------------------------------------------------

@pytest.fixture(scope="module")
def tls13_only(certs):
    yield from serving(APP, *server_flags(certs, "--ssl-min-version", "TLSv1.3"))


def test_min_version_tls13_refuses_a_tls12_client(tls13_only, certs):
    error = refused(tls13_only.addr, client_context(certs, version=ssl.TLSVersion.TLSv1_2))
    assert error.reason.endswith("PROTOCOL_VERSION"), error
    with TlsConnection(tls13_only.addr, client_context(certs)) as conn:
        assert conn.tls.version() == "TLSv1.3"
        assert conn.get_json()["tls"]["tls_version"] == 0x0304


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_server_close_sends_close_notify(server, certs, version):
    """A connection the server ends (Connection: close) ends with a close_notify alert, not
    a bare TCP close: a client that does not ignore unexpected EOFs reads a clean end, and
    OpenSSL 3.5 clients resume only sessions that ended that way."""
    import socket

    ctx = client_context(certs, version=version)
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    with ctx.wrap_socket(socket.create_connection(server.addr, timeout=30),
                         server_hostname=HOST) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):  # an SSLEOFError here: no close_notify
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]


def test_ssl_version_5_pins_tls12(narwhal, certs):
    """uvicorn's --ssl-version 5 (ssl.PROTOCOL_TLSv1_2): a TLS 1.3-only client is refused,
    a default client gets TLS 1.2."""
    server = narwhal(APP, *server_flags(certs, "--ssl-version", "5"))
    error = refused(server.addr, client_context(certs, version=ssl.TLSVersion.TLSv1_3))
    assert error.reason.endswith("PROTOCOL_VERSION"), error
    with TlsConnection(server.addr, client_context(certs)) as conn:
        assert conn.tls.version() == "TLSv1.2"
        assert conn.get_json()["tls"]["tls_version"] == 0x0303


def test_default_prefers_tls13(server, certs):
    with TlsConnection(server.addr, client_context(certs)) as conn:
        assert conn.tls.version() == "TLSv1.3"


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_session_resumption(server, certs, version):
    ctx = client_context(certs, version=version)
    with TlsConnection(server.addr, ctx) as first:
        assert not first.tls.session_reused
        # Read a response first: a TLS 1.3 server sends its session ticket after the
        # handshake, and the client takes it in only when it reads.
        first.get_json()
        session = first.tls.session
        assert session is not None
    with TlsConnection(server.addr, ctx, session=session) as second:
        info = second.get_json()
        assert second.tls.session_reused, f"{version.name}: the server did not resume the session"
        assert info["tls"]["tls_version"] == TLS_VERSIONS[second.tls.version()]
        # A resumed session has no certificate exchange, but the app still sees the server's.
        assert ssl.PEM_cert_to_DER_cert(info["tls"]["server_cert"]) == pem_der(certs.server)


@pytest.mark.parametrize("offer", [("http/1.1",), ("h2", "http/1.1")], ids=["http1.1", "h2+http1.1"])
def test_alpn_selects_http11(server, certs, offer):
    with TlsConnection(server.addr, client_context(certs, alpn=offer)) as conn:
        assert conn.tls.selected_alpn_protocol() == "http/1.1"
        assert conn.get_json()["scheme"] == "https"


def test_curl_tls12_and_tls13(server, certs):
    for flags, version in ((["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"), (["--tlsv1.3"], "TLSv1.3")):
        proc = curl("--cacert", str(certs.ca), *flags, url(server))
        assert json.loads(proc.stdout)["tls"]["tls_version"] == TLS_VERSIONS[version], (flags, proc.stdout)


# --- start-up variants that serve -------------------------------------------------------

def _serves(server, certs, version: ssl.TLSVersion | None = None) -> dict:
    assert server.scheme == "https", server.log()
    with TlsConnection(server.addr, client_context(certs, version=version)) as conn:
        info = conn.get_json()
        check_tls_extension(info, certs, conn.tls)
    return info


def test_certfile_holding_the_key(narwhal, certs):
    _serves(narwhal(APP, "--ssl-certfile", str(certs.server_combined)), certs)


def test_encrypted_key_with_password(narwhal, certs):
    _serves(narwhal(APP, "--ssl-certfile", str(certs.server), "--ssl-keyfile", str(certs.server_key_encrypted),
                    "--ssl-keyfile-password", PASSWORD), certs)


def test_tls_settings_from_environment(narwhal, certs):
    _serves(narwhal(APP, env={"NARWHAL_SSL_CERTFILE": str(certs.server), "NARWHAL_SSL_KEYFILE": str(certs.server_key)}),
            certs)


def test_tls_settings_from_config_file(narwhal, certs, tmp_path):
    config = tmp_path / "narwhal.toml"
    config.write_text(f'ssl_certfile = "{certs.server}"\nssl_keyfile = "{certs.server_key}"\n'
                      f'ssl_min_version = "TLSv1.3"\n')
    server = narwhal(APP, "--config", str(config))
    _serves(server, certs)
    refused(server.addr, client_context(certs, version=ssl.TLSVersion.TLSv1_2))


def test_uvicorn_defaults_are_accepted(narwhal, certs):
    # uvicorn passes --ssl-version 17 and --ssl-ciphers TLSv1 by default.
    server = narwhal(APP, *server_flags(certs, "--ssl-version", "17", "--ssl-ciphers", "TLSv1"))
    for version in VERSIONS:
        _serves(server, certs, version)


def test_ssl_ciphers_choose_the_tls12_suite(narwhal, certs):
    server = narwhal(APP, *server_flags(certs, "--ssl-ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256"))
    info = _serves(server, certs, ssl.TLSVersion.TLSv1_2)
    assert info["tls"]["cipher_suite"] == 0xC02B
