"""The HTTP side of a WebSocket handshake, on the real binary with raw sockets: the 101
carries the same default fields as any HTTP response; a refused upgrade says what is
wrong, with the same answer whatever the order of the faults; the denial response
(websocket.http.response.*) is checked like an HTTP response; an app that answers
nothing gets 403; an app that returns a value is reported."""

from __future__ import annotations

import email.utils
import signal
import struct

import pytest

from conftest import launch
from rawhttp import RawConnection, exchange, request
from test_websocket import KEY, encode_frame, read_frame, upgrade_headers

APP = "ws_handshake_apps:app"
GUARD = 20.0  # failure guard for every wait


@pytest.fixture(scope="module")
def server():
    s = launch(APP)
    yield s
    s.stop(signal.SIGTERM, timeout=5)


def handshake(server, path: str = "/accept", **kw):
    """Send an upgrade request; the connection and the server's answer to it."""
    conn = RawConnection(server.addr, timeout=GUARD)
    conn.send(request("GET", path, headers=upgrade_headers(**kw)))
    return conn, conn.read_response()


def echo_once(conn: RawConnection) -> None:
    conn.send(encode_frame(0x1, b"ping?"))
    assert read_frame(conn) == (0x1, b"ping?")
    conn.send(encode_frame(0x8, struct.pack("!H", 1000)))
    frame = read_frame(conn)
    assert frame is not None and frame[0] == 0x8


def refuse(server, raw: bytes):
    resp = exchange(server.addr, raw)
    assert b"beast" not in resp.raw_head.lower() + resp.body.lower(), resp.raw_head + resp.body
    assert resp.closed, "the connection stays open after a refused upgrade"
    return resp


# --- the 101 -------------------------------------------------------------------------

def test_101_has_the_http_default_fields(server):
    http = exchange(server.addr, request("GET", "/", headers=[("Connection", "close")]))
    conn, resp = handshake(server)
    with conn:
        assert resp.status == 101, resp.raw_head
        assert resp.header_all("server") == http.header_all("server") == ["narwhal"], resp.raw_head
        assert len(resp.header_all("date")) == 1, resp.raw_head
        assert email.utils.parsedate_to_datetime(resp.header("date")).tzinfo is not None
        assert b"beast" not in resp.raw_head.lower(), resp.raw_head
        echo_once(conn)


@pytest.mark.parametrize("flag,absent,present", [
    ("--no-server-header", "server", "date"),
    ("--no-date-header", "date", "server"),
])
def test_101_follows_the_header_flags(narwhal, flag, absent, present):
    s = narwhal(APP, flag)
    http = exchange(s.addr, request("GET", "/", headers=[("Connection", "close")]))
    assert http.header(absent) is None and http.header(present) is not None, http.raw_head
    conn, resp = handshake(s)
    with conn:
        assert resp.status == 101, resp.raw_head
        assert resp.header_all(absent) == [], resp.raw_head
        assert len(resp.header_all(present)) == 1, resp.raw_head
        assert b"beast" not in resp.raw_head.lower(), resp.raw_head
        echo_once(conn)


# --- refused upgrades ------------------------------------------------------------------

@pytest.mark.parametrize("version", ["8", None])
@pytest.mark.parametrize("key", [None, "short=="])
def test_bad_version_and_bad_key_is_426_in_any_order(server, version, key):
    headers = upgrade_headers(key=key, version=version)
    for ordered in (headers, list(reversed(headers))):
        resp = refuse(server, request("GET", "/accept", headers=ordered))
        assert resp.status == 426, (ordered, resp.status, resp.body)
        assert resp.header("sec-websocket-version") == "13", resp.raw_head
        assert b"WebSocket version 13" in resp.body, resp.body


@pytest.mark.parametrize("key", [None, "short==", "AAAAAAAAAAAAAAAAAAAAAA=="[:-3]])
def test_bad_key_says_so(server, key):
    resp = refuse(server, request("GET", "/accept", headers=upgrade_headers(key=key)))
    assert resp.status == 400, (resp.status, resp.body)
    assert b"Sec-WebSocket-Key" in resp.body, resp.body


def test_missing_connection_upgrade_says_so(server):
    resp = refuse(server, request("GET", "/accept", headers=upgrade_headers(connection="keep-alive")))
    assert resp.status == 400, (resp.status, resp.body)
    assert b"Connection: Upgrade" in resp.body, resp.body


@pytest.mark.parametrize("lines", [("keep-alive", "Upgrade"), ("Upgrade", "keep-alive")])
def test_connection_split_over_two_lines_is_one_list(server, lines):
    headers = [("Upgrade", "websocket"), ("Connection", lines[0]), ("Connection", lines[1]),
               ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13")]
    with RawConnection(server.addr, timeout=GUARD) as conn:
        conn.send(request("GET", "/accept", headers=headers))
        resp = conn.read_response()
        assert resp.status == 101, (resp.status, resp.raw_head, resp.body)
        echo_once(conn)


# --- the denial response ------------------------------------------------------------------

def test_denial_sends_an_app_content_length_once(server):
    resp = exchange(server.addr, request("GET", "/deny-length-twice", headers=upgrade_headers()))
    assert resp.status == 403, resp.raw_head
    assert resp.header_all("content-length") == ["4"], resp.raw_head
    assert resp.body == b"nope" and resp.closed


def test_http_sends_an_app_content_length_once(server):
    resp = exchange(server.addr, request("GET", "/length-twice", headers=[("Connection", "close")]))
    assert resp.status == 200, resp.raw_head
    assert resp.header_all("content-length") == ["2"], resp.raw_head
    assert resp.body == b"ok"


@pytest.mark.parametrize("path,error", [
    ("/deny-length-conflict", r"RuntimeError: Response has conflicting Content-Length headers"),
    ("/deny-length-short", r"RuntimeError: Response content shorter than Content-Length"),
    ("/deny-length-long", r"RuntimeError: Response content longer than Content-Length"),
    ("/deny-status-700", r"RuntimeError: Invalid HTTP status code '700' in response\."),
    ("/deny-start-twice", r"RuntimeError: Expected ASGI message 'websocket.http.response.body' "
                          r"but got 'websocket.http.response.start'"),
    ("/deny-then-accept", r"RuntimeError: Expected ASGI message 'websocket.http.response.body' "
                          r"but got 'websocket.accept'"),
])
def test_invalid_denial_is_500_and_logged(server, path, error):
    resp = exchange(server.addr, request("GET", path, headers=upgrade_headers()))
    assert resp.status == 500, (path, resp.status, resp.raw_head, resp.body)
    assert resp.complete and resp.closed, resp
    assert b"nope" not in resp.body
    server.wait_for_log(error, timeout=GUARD)


def test_denial_start_then_return_completes_empty(server):
    resp = exchange(server.addr, request("GET", "/deny-start-only", headers=upgrade_headers()))
    assert resp.status == 403, resp.raw_head
    assert resp.header("x-denied") == "start-only", resp.raw_head
    assert resp.header_all("content-length") == ["0"], resp.raw_head
    assert resp.body == b"" and resp.complete and resp.closed


def test_denial_part_then_return_completes(server):
    resp = exchange(server.addr, request("GET", "/deny-part-then-return", headers=upgrade_headers()))
    assert resp.status == 401, resp.raw_head
    assert resp.body == b"partial" and resp.complete and resp.closed


# --- how the app ends ----------------------------------------------------------------------

def test_return_without_handshake_is_403_and_logged(server):
    resp = exchange(server.addr, request("GET", "/return-before", headers=upgrade_headers()))
    assert resp.status == 403, (resp.status, resp.body)
    assert resp.closed
    server.wait_for_log(r"ASGI callable returned without completing handshake\.", timeout=GUARD)


@pytest.mark.parametrize("path,upgrade,marker", [
    ("/return-value", True, "ws-marker-41"),
    ("/return-value", False, "http-marker-42"),
])
def test_returning_a_value_is_logged(server, path, upgrade, marker):
    headers = upgrade_headers() if upgrade else [("Connection", "close")]
    resp = exchange(server.addr, request("GET", path, headers=headers))
    assert resp.status == (403 if upgrade else 200), resp.raw_head
    server.wait_for_log(rf"ASGI callable should return None, but returned '{marker}'\.", timeout=GUARD)
