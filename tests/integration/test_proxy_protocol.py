"""PROXY protocol v1 and v2 (--proxy-protocol), by raw socket.

Real binary on 127.0.0.1, the proxy_app test app (it answers the scope's client,
server and scheme).

* v1 (TCP4, TCP6, UNKNOWN) and v2 (IPv4 with TLVs, IPv6, LOCAL): `client` and `server` of
  every request on the connection come from the header; UNKNOWN and LOCAL keep the
  socket's own addresses. `auto` takes either version.
* Malformed headers, a connection without one, and a header that stalls (closed after
  --timeout-header) are closed and counted as `proxy_protocol_errors` in the stats line;
  the server goes on serving.
* A peer outside --forwarded-allow-ips is refused even with a valid header.
* TLS after the header: the handshake finds its bytes untouched.
* nginx's stream proxy with `proxy_protocol on` in front of two narwhal instances
  (--proxy-protocol v1): the app sees the test client's address and nginx's listening
  address.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import struct

import pytest

from balancers import balancers, nginx_stream_proxy  # noqa: F401 (balancers is a fixture)
from conftest import serving
from rawhttp import RawConnection, request, server_stats
from tls_certs import certs  # noqa: F401 (a fixture)
from tlsclient import HOST, TlsConnection, client_context, server_flags

APP = "proxy_app:app"
GUARD = 30.0  # failure guard for every wait, not a pace
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src: str, sport: int, dst: str, dport: int, *, command: int = 1, tlvs: bytes = b"") -> bytes:
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    family = 0x11 if s.version == 4 else 0x21
    addresses = s.packed + d.packed + struct.pack("!HH", sport, dport)
    payload = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(payload)) + payload


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def exchange(server, prefix: bytes, requests: int = 1) -> list[dict]:
    """Send `prefix` (the PROXY header), then `requests` requests on the same connection."""
    out = []
    with RawConnection(server.addr) as conn:
        conn.send(prefix)
        for _ in range(requests):
            conn.send(request("GET", "/"))
            resp = conn.read_response()
            assert resp.status == 200, resp
            out.append(json.loads(resp.body))
        out.append({"own_port": conn.local_port})
    return out


def errors(server) -> int:
    return server_stats(server)["proxy_protocol_errors"]


def assert_closed(server, data: bytes) -> None:
    """The server closes the connection without answering anything."""
    with RawConnection(server.addr, timeout=GUARD) as conn:
        conn.try_send(data)
        assert conn.wait_closed(GUARD), "the server kept the connection open"


@pytest.fixture(scope="module")
def v1_server():
    yield from serving(APP, "--proxy-protocol", "v1")


@pytest.fixture(scope="module")
def v2_server():
    yield from serving(APP, "--proxy-protocol", "v2")


@pytest.fixture(scope="module")
def auto_server():
    yield from serving(APP, "--proxy-protocol", "auto", "--timeout-header", "0.5")


def test_v1_tcp4(v1_server):
    facts = exchange(v1_server, b"PROXY TCP4 203.0.113.9 198.51.100.7 56324 443\r\n", requests=2)
    for f in facts[:2]:  # every request of the connection
        assert f["client"] == ["203.0.113.9", 56324]
        assert f["server"] == ["198.51.100.7", 443]


def test_v1_tcp6(v1_server):
    facts = exchange(v1_server, b"PROXY TCP6 2001:db8::9 2001:db8::1 4711 8443\r\n")
    assert facts[0]["client"] == ["2001:db8::9", 4711]
    assert facts[0]["server"] == ["2001:db8::1", 8443]


def test_v1_unknown_keeps_socket_addresses(v1_server):
    facts = exchange(v1_server, b"PROXY UNKNOWN\r\n")
    assert facts[0]["client"] == ["127.0.0.1", facts[1]["own_port"]]
    assert facts[0]["server"] == ["127.0.0.1", v1_server.port]


def test_v2_ipv4_with_tlvs(v2_server):
    tlvs = tlv(0x02, b"example.com") + tlv(0x05, b"unique-id-123") + tlv(0x04, b"\x00" * 7)
    facts = exchange(v2_server, v2_header("192.0.2.1", 1234, "192.0.2.2", 80, tlvs=tlvs), requests=2)
    for f in facts[:2]:
        assert f["client"] == ["192.0.2.1", 1234]
        assert f["server"] == ["192.0.2.2", 80]


def test_v2_ipv6(v2_server):
    facts = exchange(v2_server, v2_header("2001:db8::9", 4711, "2001:db8::1", 443))
    assert facts[0]["client"] == ["2001:db8::9", 4711]
    assert facts[0]["server"] == ["2001:db8::1", 443]


def test_v2_local_keeps_socket_addresses(v2_server):
    facts = exchange(v2_server, V2_SIGNATURE + b"\x20\x00\x00\x00")
    assert facts[0]["client"] == ["127.0.0.1", facts[1]["own_port"]]
    assert facts[0]["server"] == ["127.0.0.1", v2_server.port]


def test_auto_takes_either(auto_server):
    assert exchange(auto_server, b"PROXY TCP4 203.0.113.9 198.51.100.7 1 2\r\n")[0]["client"] == ["203.0.113.9", 1]
    assert exchange(auto_server, v2_header("192.0.2.1", 3, "192.0.2.2", 4))[0]["client"] == ["192.0.2.1", 3]


def test_header_in_pieces(v1_server):
    """A header split over several packets is put together (TCP_NODELAY on our side)."""
    with RawConnection(v1_server.addr) as conn:
        for piece in (b"PROX", b"Y TCP4 203.0.113.9 ", b"198.51.100.7 5 6\r", b"\n"):
            conn.send(piece)
        conn.send(request("GET", "/"))
        resp = conn.read_response()
    assert json.loads(resp.body)["client"] == ["203.0.113.9", 5]


MALFORMED = {
    "missing": request("GET", "/"),
    "bad-signature": b"PROXZ TCP4 203.0.113.9 198.51.100.7 1 2\r\n",
    "bad-family": b"PROXY TCP9 203.0.113.9 198.51.100.7 1 2\r\n",
    "bad-port": b"PROXY TCP4 203.0.113.9 198.51.100.7 1 65536\r\n",
    "bad-address": b"PROXY TCP4 203.0.113.999 198.51.100.7 1 2\r\n",
    "too-long": b"PROXY UNKNOWN " + b"x" * 200 + b"\r\n",
    "v2-bad-version": V2_SIGNATURE + b"\x31\x11\x00\x0c" + b"\x00" * 12,
    "v2-bad-family": V2_SIGNATURE + b"\x21\x51\x00\x0c" + b"\x00" * 12,
    "v2-short-length": V2_SIGNATURE + b"\x21\x11\x00\x04" + b"\x00" * 4,
    "tls-without-header": b"\x16\x03\x01\x00\x05hello",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_closed_and_counted(auto_server, case):
    before = errors(auto_server)
    assert_closed(auto_server, MALFORMED[case])
    assert errors(auto_server) == before + 1
    # Still serving.
    assert exchange(auto_server, b"PROXY UNKNOWN\r\n")[0]["server"] == ["127.0.0.1", auto_server.port]


def test_truncated_then_closed_by_client(auto_server):
    before = errors(auto_server)
    with socket.create_connection(auto_server.addr, timeout=GUARD) as sock:
        sock.sendall(b"PROXY TCP4 203.0.113.9")
        sock.shutdown(socket.SHUT_WR)
        assert sock.recv(100) == b""
    assert errors(auto_server) == before + 1


def test_stalled_header_times_out(auto_server):
    """--timeout-header 0.5: half a header, then silence; the server closes."""
    before = errors(auto_server)
    assert_closed(auto_server, b"PROXY TCP4 203.0.113.9 ")
    assert errors(auto_server) == before + 1
    # Silence from the first byte: the same.
    assert_closed(auto_server, b"")
    assert errors(auto_server) == before + 2


def test_untrusted_peer_refused(narwhal):
    server = narwhal(APP, "--proxy-protocol", "v1", "--forwarded-allow-ips", "10.0.0.1")
    assert_closed(server, b"PROXY TCP4 203.0.113.9 198.51.100.7 1 2\r\n" + request("GET", "/"))
    assert errors(server) == 1


def test_tls_after_the_header(narwhal, certs):
    server = narwhal(APP, "--proxy-protocol", "v2", *server_flags(certs))
    header = v2_header("192.0.2.1", 1234, "192.0.2.2", 443, tlvs=tlv(0x04, b"\x00" * 3))
    ctx = client_context(certs)
    with socket.create_connection(server.addr, timeout=GUARD) as raw:
        raw.sendall(header)
        with ctx.wrap_socket(raw, server_hostname=HOST) as tls:
            tls.sendall(request("GET", "/"))
            data = b""
            while b"\r\n\r\n" not in data or not data.endswith(b"}"):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    facts = json.loads(body)
    assert facts["client"] == ["192.0.2.1", 1234]
    assert facts["server"] == ["192.0.2.2", 443]
    assert facts["scheme"] == "https"


def test_tls_without_header_refused(narwhal, certs):
    server = narwhal(APP, "--proxy-protocol", "v2", *server_flags(certs))
    with pytest.raises((OSError, ConnectionError)):
        with TlsConnection(server.addr, client_context(certs), timeout=GUARD) as conn:
            conn.get_json("/")
    assert errors(server) == 1


def test_proxy_headers_after_proxy_protocol(narwhal):
    """X-Forwarded-For is believed from the client the PROXY header names only if that
    client is itself a trusted proxy."""
    server = narwhal(APP, "--proxy-protocol", "v1", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8")
    # The named client (a trusted proxy) is the scope's client when it forwards nothing.
    assert exchange(server, b"PROXY TCP4 10.1.1.1 10.2.2.2 1 2\r\n")[0]["client"] == ["10.1.1.1", 1]
    with RawConnection(server.addr) as conn:
        conn.send(b"PROXY TCP4 10.1.1.1 10.2.2.2 1 2\r\n")
        conn.send(request("GET", "/", [("X-Forwarded-For", "203.0.113.9")]))
        trusted_client = json.loads(conn.read_response().body)
    with RawConnection(server.addr) as conn:
        conn.send(b"PROXY TCP4 198.51.100.1 10.2.2.2 1 2\r\n")
        conn.send(request("GET", "/", [("X-Forwarded-For", "203.0.113.9")]))
        untrusted_client = json.loads(conn.read_response().body)
    assert trusted_client["client"] == ["203.0.113.9", 0]
    assert untrusted_client["client"] == ["198.51.100.1", 1]


def test_nginx_stream_proxy_protocol(narwhal, balancers, tmp_path):
    backends = [narwhal(APP, "--proxy-protocol", "v1") for _ in range(2)]
    lb = balancers.nginx(tmp_path, stream=nginx_stream_proxy([b.port for b in backends]))
    pids = set()
    for _ in range(6):
        conn = http.client.HTTPConnection(*lb.addr, timeout=GUARD, source_address=("127.0.0.2", 0))
        try:
            conn.connect()
            own_port = conn.sock.getsockname()[1]
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()
            facts = json.loads(resp.read())
        finally:
            conn.close()
        assert facts["client"] == ["127.0.0.2", own_port], facts
        assert facts["server"] == ["127.0.0.1", lb.port], facts
        pids.add(facts["pid"])
    assert pids == {b.pid for b in backends}, "nginx should have used both narwhal instances"
