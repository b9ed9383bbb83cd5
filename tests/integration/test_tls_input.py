"""Bad TLS input: start-up errors, connections that never complete a handshake, and
certificate reload.

* Each start-up error of the TLS options exits with status 2 before serving, with
  its stable message (missing files; unreadable ones, made as directories, which no
  one can read as a file, root included; no certificate; an unusable or encrypted
  key without/with a wrong password; a key that does not match; client certificates
  without a CA bundle; a key file without a certificate; no cipher).
* Plain HTTP to the TLS port, a truncated ClientHello, random bytes, and a client
  that stalls halfway through its ClientHello (closed after --timeout-header): each
  connection is closed, the failure is counted in the stats line and logged at debug
  level only, and the server still serves HTTPS.
* Soak: 300 seeded mutations of a real ClientHello and 60 random blobs, each on its
  own connection, in concurrent batches: every connection is closed, the process is
  alive, a good client works, and the stats count every failure.
* SIGHUP reloads the certificate for new handshakes while an open connection goes on
  with the old one; a broken, deleted or unreadable file, or a key that does not match
  the certificate, keeps the current certificate.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import APPS_DIR, run_cli, serving
from rawhttp import TIMESTAMP, server_stats
from tls_certs import certs, pem_der  # noqa: F401 (certs is a fixture)
from tlsclient import (TlsConnection, client_context, client_hello, mutations, random_blobs,
                       send_and_wait_close, server_flags)

APP = "tls_app:app"
SERVE_ARGS = ("--app-dir", str(APPS_DIR), "--host", "127.0.0.1", "--port", "0")
GUARD = 60.0  # failure guard for a connection the server must close, not a pace
SOAK_MUTATIONS, SOAK_BLOBS, SOAK_BATCH = 300, 60, 40


# --- start-up errors --------------------------------------------------------------------

def _start_up_cases(c, tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (TLS flags, substrings the error output must hold)."""
    missing = tmp / "missing.pem"
    directory = tmp / "a-directory.key"
    directory.mkdir(exist_ok=True)
    no_cert = tmp / "no-cert.pem"
    no_cert.write_text("this file holds no certificate\n")
    bad_key = tmp / "bad.key"
    bad_key.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    cert, key = str(c.server), str(c.server_key)
    return {
        "missing-certfile": (["--ssl-certfile", str(missing), "--ssl-keyfile", key],
                             [f"TLS: cannot read --ssl-certfile {missing}"]),
        "missing-keyfile": (["--ssl-certfile", cert, "--ssl-keyfile", str(missing)],
                            [f"TLS: cannot read --ssl-keyfile {missing}"]),
        # As root every file is readable: a directory is the path no one can read as a file.
        "unreadable-certfile": (["--ssl-certfile", str(directory), "--ssl-keyfile", key],
                                [f"TLS: cannot read --ssl-certfile {directory}"]),
        "unreadable-keyfile": (["--ssl-certfile", cert, "--ssl-keyfile", str(directory)],
                               [f"TLS: cannot read --ssl-keyfile {directory}"]),
        "unreadable-ca-certs": (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-cert-reqs", "2",
                                 "--ssl-ca-certs", str(directory)],
                                [f"TLS: cannot read --ssl-ca-certs {directory}"]),
        "missing-ca-certs": (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-cert-reqs", "2",
                              "--ssl-ca-certs", str(missing)],
                             [f"TLS: cannot read --ssl-ca-certs {missing}"]),
        "no-certificate": (["--ssl-certfile", str(no_cert), "--ssl-keyfile", key],
                           [f"TLS: --ssl-certfile {no_cert} holds no usable certificate"]),
        "unusable-key": (["--ssl-certfile", cert, "--ssl-keyfile", str(bad_key)],
                         [f"TLS: cannot load the private key from {bad_key}"]),
        "wrong-password": (["--ssl-certfile", cert, "--ssl-keyfile", str(c.server_key_encrypted),
                            "--ssl-keyfile-password", "not-the-password"],
                           [f"TLS: cannot load the private key from {c.server_key_encrypted}",
                            "wrong --ssl-keyfile-password?"]),
        "encrypted-key-no-password": (["--ssl-certfile", cert, "--ssl-keyfile", str(c.server_key_encrypted)],
                                      [f"TLS: cannot load the private key from {c.server_key_encrypted}",
                                       "wrong --ssl-keyfile-password?"]),
        "mismatched-key": (["--ssl-certfile", cert, "--ssl-keyfile", str(c.mismatched_key)],
                           ["TLS: the private key does not match the certificate"]),
        "cert-reqs-2-without-ca": (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-cert-reqs", "2"],
                                   ["--ssl-cert-reqs 2 needs --ssl-ca-certs"]),
        "cert-reqs-1-without-ca": (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-cert-reqs", "1"],
                                   ["--ssl-cert-reqs 1 needs --ssl-ca-certs"]),
        "keyfile-without-certfile": (["--ssl-keyfile", key], ["--ssl-keyfile needs --ssl-certfile"]),
        "no-cipher": (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-ciphers", "NO-SUCH-CIPHER"],
                      ["TLS: --ssl-ciphers 'NO-SUCH-CIPHER' selects no cipher"]),
        "ssl-version-tls1": (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-version", "3"],
                             ["TLS: --ssl-version 3 asks for TLS 1.0 only"]),
        "ssl-version-client": (["--ssl-certfile", cert, "--ssl-keyfile", key, "--ssl-version", "16"],
                               ["TLS: --ssl-version 16 is ssl.PROTOCOL_TLS_CLIENT"]),
    }


START_UP_CASES = [
    "missing-certfile", "missing-keyfile", "unreadable-certfile", "unreadable-keyfile", "missing-ca-certs",
    "unreadable-ca-certs", "no-certificate",
    "unusable-key", "wrong-password", "encrypted-key-no-password", "mismatched-key",
    "cert-reqs-2-without-ca", "cert-reqs-1-without-ca", "keyfile-without-certfile", "no-cipher",
    "ssl-version-tls1", "ssl-version-client",
]


@pytest.mark.parametrize("case", START_UP_CASES)
def test_start_up_error(certs, tmp_path, case):
    flags, expected = _start_up_cases(certs, tmp_path)[case]
    r = run_cli(APP, *SERVE_ARGS, *flags)
    out = r.stdout + r.stderr
    assert r.returncode == 2, f"exit {r.returncode}:\n{out}"
    assert "running on" not in out, out
    for text in expected:
        lines = [line for line in out.splitlines() if text in line]
        assert lines, f"{text!r} not in:\n{out}"
    assert len([line for line in out.splitlines() if expected[0] in line]) == 1, out


# --- connections that never complete a handshake --------------------------------------

@pytest.fixture(scope="module")
def server(certs):
    yield from serving(APP, *server_flags(certs))


def failures(server) -> int:
    return server_stats(server)["tls_handshake_failures"]


def assert_serves_https(server, certs) -> None:
    assert server.proc.poll() is None, server.log()[-3000:]
    with TlsConnection(server.addr, client_context(certs)) as conn:
        info = conn.get_json()
    assert info["scheme"] == "https" and info["tls"]["client_cert_chain"] == [], info


def bad_inputs() -> dict[str, bytes]:
    hello = client_hello()
    return {
        "plain-http": b"GET /info HTTP/1.1\r\nHost: test\r\n\r\n",
        "truncated-client-hello": hello[:len(hello) // 2],
        "random-bytes": random_blobs(1, seed=1234)[0],
        "tls-header-then-garbage": random_blobs(2, seed=99)[1],
    }


@pytest.mark.parametrize("kind", ["plain-http", "truncated-client-hello", "random-bytes", "tls-header-then-garbage"])
def test_bad_handshake_is_closed_and_counted(server, certs, kind):
    before = failures(server)
    # Plain HTTP is sent as a client would (no half-close): the server must close on
    # its own; the others end our side like a client that gave up.
    how, received = send_and_wait_close(server.addr, bad_inputs()[kind], half_close=kind != "plain-http",
                                        timeout=GUARD)
    assert how in ("eof", "reset"), f"{kind}: the server kept the connection open for {GUARD}s"
    assert not received.startswith(b"HTTP/"), f"{kind}: the app answered a failed handshake: {received[:200]!r}"
    assert_serves_https(server, certs)
    assert failures(server) >= before + 1, server.log()[-3000:]
    # Failed handshakes are logged at debug level only; this server logs at info.
    assert "TLS handshake failed" not in server.log(), server.log()[-3000:]


@pytest.fixture(scope="module")
def short_header_timeout(certs):
    yield from serving(APP, *server_flags(certs, "--timeout-header", "1", "--log-level", "debug"))


def test_stalled_handshake_is_closed_after_timeout_header(short_header_timeout, certs):
    server = short_header_timeout
    before = failures(server)
    hello = client_hello()
    # Half a ClientHello, then silence (our side stays open): only the server's
    # handshake deadline can end this connection.
    how, received = send_and_wait_close(server.addr, hello[:len(hello) // 2], half_close=False, timeout=GUARD)
    assert how in ("eof", "reset"), f"a stalled handshake stayed open for {GUARD}s"
    assert_serves_https(server, certs)
    assert failures(server) >= before + 1
    server.wait_for_log(TIMESTAMP + r"DEBUG:.*TLS handshake failed from 127\.0\.0\.1:\d+: ")


def test_garbage_handshake_soak(server, certs):
    before = failures(server)
    hello = client_hello()
    inputs = mutations(hello, SOAK_MUTATIONS, seed=20261201) + random_blobs(SOAK_BLOBS, seed=4242)
    outcomes: list[tuple[str, bytes]] = []
    with ThreadPoolExecutor(SOAK_BATCH) as pool:
        for start in range(0, len(inputs), SOAK_BATCH):
            batch = inputs[start:start + SOAK_BATCH]
            outcomes += pool.map(lambda data: send_and_wait_close(server.addr, data, timeout=GUARD), batch)
            assert server.proc.poll() is None, \
                f"the server died in batch {start // SOAK_BATCH}:\n{server.log()[-3000:]}"
    still_open = [i for i, (how, _) in enumerate(outcomes) if how == "open"]
    assert not still_open, f"connections the server never closed (input index): {still_open}"
    answered = [i for i, (_, got) in enumerate(outcomes) if got.startswith(b"HTTP/")]
    assert not answered, f"HTTP answers to garbage handshakes (input index): {answered}"
    assert_serves_https(server, certs)
    counted = failures(server) - before
    assert counted >= len(inputs), f"{len(inputs)} failed handshakes, the stats counted {counted}"


# --- certificate reload ----------------------------------------------------------------

def _replace(path: Path, source: Path) -> None:
    tmp = path.with_suffix(".new")
    tmp.write_bytes(source.read_bytes())
    os.replace(tmp, path)


def test_sighup_reloads_the_certificate(narwhal, certs, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    _replace(cert, certs.server)
    _replace(key, certs.server_key)
    # A long keep-alive: the old connection must outlive two reloads on a busy machine.
    server = narwhal(APP, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--timeout-keep-alive", "300")
    ctx = client_context(certs)
    a_der, b_der = pem_der(certs.server), pem_der(certs.server_b)
    assert a_der != b_der

    with TlsConnection(server.addr, ctx) as old:
        first = old.get_json()
        assert old.tls.getpeercert(binary_form=True) == a_der

        _replace(cert, certs.server_b)
        _replace(key, certs.server_b_key)
        server.signal(signal.SIGHUP)
        server.wait_for_log(re.escape(f"TLS: reloaded the certificate from {cert}"))

        # The open connection goes on, on its old handshake.
        again = old.get_json()
        assert again["client"] == first["client"]
        assert ssl.PEM_cert_to_DER_cert(again["tls"]["server_cert"]) == a_der
        # New handshakes get certificate B.
        with TlsConnection(server.addr, ctx) as new:
            assert new.tls.getpeercert(binary_form=True) == b_der
            assert ssl.PEM_cert_to_DER_cert(new.get_json()["tls"]["server_cert"]) == b_der

        # A broken file: the reload fails and B stays.
        cert.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"TLS: cannot reload .*: keeping the current certificate")
        with TlsConnection(server.addr, ctx) as new:
            assert new.tls.getpeercert(binary_form=True) == b_der
            assert new.get_json()["scheme"] == "https"
        assert old.get_json()["client"] == first["client"]
    assert server.proc.poll() is None


@pytest.mark.parametrize("how", ["key-of-another-cert", "cert-deleted", "cert-is-a-directory"])
def test_sighup_with_unusable_files_keeps_the_current_certificate(narwhal, certs, tmp_path, how):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    _replace(cert, certs.server)
    _replace(key, certs.server_key)
    server = narwhal(APP, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    if how == "key-of-another-cert":  # a half-done replacement: the new key, the old certificate
        _replace(key, certs.server_b_key)
    else:
        cert.unlink()
        if how == "cert-is-a-directory":
            cert.mkdir()  # the path names nothing readable as a file (even for root)
    server.signal(signal.SIGHUP)
    server.wait_for_log(r"TLS: cannot reload .*: keeping the current certificate")
    with TlsConnection(server.addr, client_context(certs)) as conn:
        assert conn.tls.getpeercert(binary_form=True) == pem_der(certs.server)
        assert conn.get_json()["scheme"] == "https"
