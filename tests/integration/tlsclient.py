"""The client side of the TLS tests: Python `ssl` contexts, rawhttp's strict connection
over TLS, a probe for refused handshakes, and raw ClientHello bytes to mutate."""

from __future__ import annotations

import json
import random
import socket
import ssl
from pathlib import Path

from rawhttp import DEFAULT_TIMEOUT, RawConnection, request
from tls_certs import Certs

# IANA ids of the suites a Python client may negotiate with a server that offers
# ECDHE + AEAD only (names as OpenSSL, and so SSLSocket.cipher(), spells them).
IANA_SUITES = {
    "TLS_AES_128_GCM_SHA256": 0x1301,
    "TLS_AES_256_GCM_SHA384": 0x1302,
    "TLS_CHACHA20_POLY1305_SHA256": 0x1303,
    "TLS_AES_128_CCM_SHA256": 0x1304,
    "TLS_AES_128_CCM_8_SHA256": 0x1305,
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
}
TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
HOST = "127.0.0.1"  # the server certificate names it (IP SAN), so clients verify it as is


def client_context(certs: Certs, *, version: ssl.TLSVersion | None = None,
                   cert: Path | None = None, key: Path | None = None,
                   alpn: tuple[str, ...] | None = ("http/1.1",)) -> ssl.SSLContext:
    """A verifying client context that trusts the test CA; `version` pins min and max."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(certs.ca))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class TlsConnection(RawConnection):
    """A RawConnection whose socket is TLS (handshake done in the constructor)."""

    def __init__(self, addr: tuple[str, int], ctx: ssl.SSLContext, *,
                 session: ssl.SSLSession | None = None, timeout: float = DEFAULT_TIMEOUT,
                 suppress_ragged_eofs: bool = True) -> None:
        super().__init__(addr, timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=HOST, session=session,
                                    suppress_ragged_eofs=suppress_ragged_eofs)

    @property
    def tls(self) -> ssl.SSLSocket:
        return self.sock

    def get_json(self, target: str = "/info") -> dict:
        """GET `target` on this connection (kept alive) and return the JSON body."""
        self.send(request("GET", target))
        resp = self.read_response()
        assert resp.status == 200, f"GET {target}: {resp.status} {resp.body[:300]!r}"
        return json.loads(resp.body)


def refused(addr: tuple[str, int], ctx: ssl.SSLContext, timeout: float = DEFAULT_TIMEOUT) -> ssl.SSLError:
    """Connect with `ctx` where the server must refuse the handshake; return the ssl error
    the client got. A TLS 1.3 client finishes its part of the handshake before the
    server has checked the client's certificate, so the refusal (an alert, or a close
    without close_notify: an SSLEOFError) may only show at the first read; the probe
    reads without sending a request (no unread request bytes on the server's side that
    would turn its close into a reset). `ctx` is changed: an EOF without close_notify
    must raise (Python's default ignores it)."""
    ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
    try:
        with TlsConnection(addr, ctx, timeout=timeout, suppress_ragged_eofs=False) as conn:
            try:
                data = conn.sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"the server kept the connection open for {timeout}s after a handshake "
                                     f"it should have refused ({conn.tls.version()})") from None
    except ssl.SSLCertVerificationError as exc:
        raise AssertionError(f"the client refused the server's certificate, not the other way round: {exc}")
    except ssl.SSLError as exc:
        return exc
    if not data:
        raise AssertionError("the server closed the connection cleanly (close_notify) after a handshake it "
                             "should have refused (the client saw no ssl error)")
    raise AssertionError(f"the handshake went through: the server sent {data!r}")


def client_hello() -> bytes:
    """The bytes of one real ClientHello record, made without a server (memory BIOs)."""
    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    outgoing = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:  # it sent the ClientHello and now waits for the server
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and hello[5:6] == b"\x01", f"not a ClientHello record: {hello[:16]!r}"
    return hello


def _length_fields(hello: bytes) -> list[tuple[int, int]]:
    """(offset, size) of the ClientHello's length fields: record, handshake, session id,
    cipher suites, compression methods, extensions, and each extension's own."""
    fields = [(3, 2), (6, 3)]
    pos = 5 + 4 + 2 + 32
    fields.append((pos, 1))
    pos += 1 + hello[pos]
    fields.append((pos, 2))
    pos += 2 + int.from_bytes(hello[pos:pos + 2], "big")
    fields.append((pos, 1))
    pos += 1 + hello[pos]
    fields.append((pos, 2))
    end = pos + 2 + int.from_bytes(hello[pos:pos + 2], "big")
    pos += 2
    while pos + 4 <= end:
        fields.append((pos + 2, 2))
        pos += 4 + int.from_bytes(hello[pos + 2:pos + 4], "big")
    return fields


def mutations(hello: bytes, count: int, seed: int) -> list[bytes]:
    """`count` seeded-random variants of `hello`: bit flips, truncations, a length field
    set to 0 or all ones, repeated chunks; each at least one byte long."""
    rng = random.Random(seed)
    fields = _length_fields(hello)

    def bit_flips() -> bytes:
        data = bytearray(hello)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)

    def truncation() -> bytes:
        return hello[:rng.randrange(1, len(hello))]

    def length_field() -> bytes:
        data = bytearray(hello)
        offset, size = rng.choice(fields)
        value = rng.choice((0, 0xFFFF if size > 1 else 0xFF))
        data[offset:offset + size] = value.to_bytes(size, "big")
        return bytes(data)

    def repeated_chunk() -> bytes:
        start = rng.randrange(len(hello))
        stop = rng.randint(start + 1, min(len(hello), start + 64))
        return hello[:stop] + hello[start:stop] * rng.randint(1, 40) + hello[stop:]

    kinds = (bit_flips, truncation, length_field, repeated_chunk)
    return [kinds[i % len(kinds)]() for i in range(count)]


def random_blobs(count: int, seed: int) -> list[bytes]:
    """`count` seeded-random byte strings (1 to 4096 bytes); half start with a plausible
    handshake record header, which gets them past the first check."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        data = rng.randbytes(rng.randint(1, 4096))
        if i % 2:
            data = b"\x16\x03\x01" + len(data).to_bytes(2, "big") + data
        out.append(data)
    return out


def server_flags(certs: Certs, *extra: str) -> list[str]:
    """narwhal flags that serve `certs.server` (plus `extra`)."""
    return ["--ssl-certfile", str(certs.server), "--ssl-keyfile", str(certs.server_key), *extra]


def send_and_wait_close(addr: tuple[str, int], data: bytes, *, half_close: bool = True,
                        timeout: float = 60.0) -> tuple[str, bytes]:
    """Send `data` on a fresh connection (then, with `half_close`, end our side) and wait
    for the server to close it. Returns ("eof" | "reset" | "open", what the server sent);
    "open" means it did not close within `timeout` (a failure guard, not a pace)."""
    received = b""
    with socket.create_connection(addr, timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            return "reset", received
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            return "reset", received
        except socket.timeout:
            return "open", received
        return "eof", received
