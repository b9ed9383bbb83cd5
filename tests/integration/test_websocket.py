"""WebSocket support (ASGI websocket spec 2.4) of the real narwhal binary.

Handshake validation and HTTP answers instead of a handshake (400/405/426, 403,
the denial extension, 500) are checked with raw sockets; everything after the
handshake with the `websockets` client (and a minimal raw frame codec where the
client library hides what is tested: server pings). What the app sees is reported
through a side channel file named by the `report` query parameter (ws_apps.py).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import struct
import time
import urllib.parse

import pytest
from websockets.exceptions import ConnectionClosed

from conftest import launch
from rawhttp import RawConnection, exchange, request, wait_for_file
from rawws import encode_frame, raw_upgrade, read_frame, read_until_close_frame
import wsclient

APP = "ws_apps:app"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 section 1.3 example
GUARD = 20.0  # failure guard for every wait


# --- helpers -------------------------------------------------------------------

@pytest.fixture(scope="module")
def ws_server():
    """One server with default flags for the tests that need nothing special."""
    server = launch(APP)
    yield server
    server.stop(signal.SIGTERM, timeout=5)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def uri(server, path: str, **params: str) -> str:
    q = ("?" + urllib.parse.urlencode(params)) if params else ""
    return f"ws://{server.host}:{server.port}{path}{q}"


def target(path: str, **params: str) -> str:
    return path + (("?" + urllib.parse.urlencode(params)) if params else "")


def connect(url: str, **kw):
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", GUARD)
    kw.setdefault("close_timeout", GUARD)
    return wsclient.connect(url, **kw)


def read_report(path) -> dict:
    return json.loads(wait_for_file(str(path), timeout=GUARD))


def upgrade_headers(key: str | None = KEY, version: str | None = "13",
                    connection: str | None = "Upgrade", upgrade: str = "websocket",
                    extra: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    h = [("Upgrade", upgrade)]
    if connection is not None:
        h.append(("Connection", connection))
    if key is not None:
        h.append(("Sec-WebSocket-Key", key))
    if version is not None:
        h.append(("Sec-WebSocket-Version", version))
    return h + (extra or [])


def ws_request(path: str = "/scope", method: str = "GET", **kw) -> bytes:
    return request(method, path, headers=upgrade_headers(**kw))


def raw_handshake(server, path: str, timeout: float = GUARD) -> RawConnection:
    conn = RawConnection(server.addr, timeout=timeout)
    conn.send(ws_request(path))
    resp = conn.read_response()
    assert resp.status == 101, f"expected 101, got {resp.status} {resp.body!r}"
    return conn


# --- handshake validation (raw) ------------------------------------------------------

def test_valid_handshake_raw(ws_server):
    with RawConnection(ws_server.addr, timeout=GUARD) as conn:
        conn.send(ws_request("/scope"))
        resp = conn.read_response()
        assert resp.status == 101
        assert resp.has_token("upgrade", "websocket"), resp.raw_head
        assert resp.has_token("connection", "upgrade"), resp.raw_head
        assert resp.header("sec-websocket-accept") == ACCEPT
        expected = base64.b64encode(hashlib.sha1((KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
        assert resp.header("sec-websocket-accept") == expected.decode()
        frame = read_frame(conn)
        assert frame == (0x1, b"hello")
        conn.send(encode_frame(0x8, struct.pack("!H", 1000)))
        frame = read_frame(conn)
        assert frame is not None and frame[0] == 0x8 and frame[1][:2] == struct.pack("!H", 1000)


@pytest.mark.parametrize("method", ["POST", "PUT", "HEAD"])
def test_upgrade_with_non_get_method_is_405(ws_server, method):
    resp = exchange(ws_server.addr, ws_request("/scope", method=method), method=method)
    assert resp.status == 405, (resp.status, resp.body)


@pytest.mark.parametrize("case,kw", [
    ("missing-key", {"key": None}),
    ("key-not-base64", {"key": "not a base64 key!!!!!!!=="}),
    ("key-wrong-length", {"key": "dGhlIHNhbXBsZQ=="}),
    ("no-connection-upgrade", {"connection": None}),
    ("connection-keep-alive", {"connection": "keep-alive"}),
    ("duplicate-key", {"extra": [("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")]}),
])
def test_invalid_upgrade_is_400(ws_server, case, kw):
    resp = exchange(ws_server.addr, ws_request("/scope", **kw))
    assert resp.status == 400, (case, resp.status, resp.body)


@pytest.mark.parametrize("version", ["8", "12", "14", None])
def test_unsupported_version_is_426(ws_server, version):
    resp = exchange(ws_server.addr, ws_request("/scope", version=version))
    assert resp.status == 426, (version, resp.status, resp.body)
    assert resp.header("sec-websocket-version") == "13", resp.raw_head


def test_close_before_accept_is_403(ws_server, tmp_path):
    rep = tmp_path / "r.json"
    resp = exchange(ws_server.addr, ws_request(target("/reject", report=str(rep))))
    assert resp.status == 403, (resp.status, resp.body)
    assert read_report(rep) == {"closed": True}


def test_close_before_accept_is_403_for_client(ws_server):
    async def main():
        with pytest.raises(wsclient.HandshakeRejected) as info:
            async with connect(uri(ws_server, "/reject")):
                pass
        return wsclient.rejected_status(info.value)
    assert run(main()) == 403


def test_denial_response(ws_server, tmp_path):
    rep = tmp_path / "r.json"
    resp = exchange(ws_server.addr, ws_request(target("/deny", report=str(rep))))
    assert resp.status == 401, (resp.status, resp.raw_head)
    assert resp.header("x-denied") == "yes", resp.raw_head
    assert resp.header("content-type") == "text/plain", resp.raw_head
    assert resp.body == b"denied: no token"
    assert resp.header("sec-websocket-accept") is None
    assert resp.closed, "server kept the connection open after the denial response"
    assert read_report(rep) == {"done": True}


def test_denial_response_with_the_apps_content_length(ws_server):
    """The app's content-length is the only one: a second, even equal, is refused by strict
    clients (websockets >= 14)."""
    resp = exchange(ws_server.addr, ws_request("/deny-sized"))
    assert resp.status == 403, (resp.status, resp.raw_head)
    assert resp.header_all("content-length") == ["6"], resp.raw_head
    assert resp.body == b"sized!"


def test_denial_response_rejected_for_the_client(ws_server):
    async def main():
        with pytest.raises(wsclient.HandshakeRejected) as info:
            async with connect(uri(ws_server, "/deny-sized")):
                pass
        return wsclient.rejected_status(info.value)
    assert run(main()) == 403


def test_app_exception_before_accept_is_500(ws_server):
    resp = exchange(ws_server.addr, ws_request("/raise-before"))
    assert resp.status == 500, (resp.status, resp.body)
    ws_server.wait_for_log(r"ws_raise_before", timeout=GUARD)


def test_app_returning_without_handshake_is_403(ws_server):
    """As if it had closed before accepting (ASGI: 403); the server logs the mistake."""
    resp = exchange(ws_server.addr, ws_request("/return-before"))
    assert resp.status == 403, (resp.status, resp.body)
    ws_server.wait_for_log(r"ASGI callable returned without completing handshake\.", timeout=GUARD)


def test_plain_http_still_served(ws_server):
    resp = exchange(ws_server.addr, request("GET", "/", headers=[("Connection", "close")]))
    assert resp.status == 200 and resp.body == b"plain http"


# --- scope and messages ----------------------------------------------------------------

def test_scope(ws_server, tmp_path):
    rep = tmp_path / "r.json"
    url = f"ws://{ws_server.host}:{ws_server.port}/scope/a%20b?x=1&report={urllib.parse.quote(str(rep))}"

    async def main():
        async with connect(url, subprotocols=["p1", "p2"], headers=[("X-Custom", "v1")]) as ws:
            assert await ws.recv() == "hello"
            return ws.local_address
    local = run(main())
    r = read_report(rep)
    s, types = r["scope"], r["types"]
    assert s["type"] == "websocket"
    assert s["asgi"]["version"] == "3.0"
    assert s["http_version"] == "1.1"
    assert s["scheme"] == "ws"
    assert s["path"] == "/scope/a b"
    assert s["raw_path"] == {"bytes": "/scope/a%20b"}
    assert s["query_string"] == {"bytes": f"x=1&report={urllib.parse.quote(str(rep))}"}
    assert s["root_path"] == ""
    assert types["raw_path"] == "bytes" and types["query_string"] == "bytes"
    headers = [(h[0]["bytes"], h[1]["bytes"]) for h in s["headers"]]
    assert ("x-custom", "v1") in headers
    assert ("host", f"{ws_server.host}:{ws_server.port}") in headers
    assert ("sec-websocket-protocol", "p1, p2") in headers
    assert all(k == k.lower() for k, _ in headers)
    assert s["client"] == [local[0], local[1]]
    assert s["server"] == [ws_server.host, ws_server.port]
    assert s["subprotocols"] == ["p1", "p2"]
    assert types["state"] == "dict" and s["state"].get("ws_apps_started") is True
    assert s["extensions"] == {"websocket.http.response": {}, "narwhal.pubsub": {}}
    assert r["has_method"] is False
    assert r["first"] == {"type": "websocket.connect"}


def test_echo_text_and_bytes(ws_server):
    async def main():
        async with connect(uri(ws_server, "/echo"), compression=None) as ws:
            out = []
            for msg in ["hi", "ünïcødé ✓", "", b"\x00\x01\xff", b"", "x" * 70000, os.urandom(200000)]:
                await ws.send(msg)
                got = await ws.recv()
                out.append((msg, got))
            return out
    for sent, got in run(main()):
        assert type(got) is type(sent) and got == sent, (sent[:20], got[:20])


def test_client_close_gives_disconnect_and_send_raises(ws_server, tmp_path):
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(ws_server, "/echo", report=str(rep))) as ws:
            await ws.send("one")
            assert await ws.recv() == "one"
            await ws.close(code=4002, reason="client bye")
    run(main())
    r = read_report(rep)
    assert r["disconnect"]["type"] == "websocket.disconnect"
    assert r["disconnect"]["code"] == 4002
    assert r["again"]["type"] == "websocket.disconnect" and r["again"]["code"] == 4002
    assert r["received"] == 1
    exc = r["send_exc"]
    assert exc is not None, "send() after the close did not raise"
    assert exc["is_oserror"], exc
    assert exc["is_client_disconnected"], exc
    assert exc["exc_type"] == "ClientDisconnected"


def test_subprotocol_and_accept_headers(ws_server, tmp_path):
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(ws_server, "/subprotocol", report=str(rep)),
                           subprotocols=["chat", "superchat"]) as ws:
            return ws.subprotocol, wsclient.response_header(ws, "x-accepted-by"), await ws.recv()
    sub, hdr, msg = run(main())
    assert read_report(rep) == {"subprotocols": ["chat", "superchat"]}
    assert sub == "superchat"
    assert hdr == "ws_apps"
    assert msg == "chose superchat"


def test_app_close_code_and_reason(ws_server, tmp_path):
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(ws_server, "/close", code="4001", reason="bye now", report=str(rep))) as ws:
            first = await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return first, ws.close_code, ws.close_reason
    first, code, reason = run(main())
    assert first == "before close"
    assert (code, reason) == (4001, "bye now")
    r = read_report(rep)
    assert r["after_close"]["type"] == "websocket.disconnect", r


def test_send_before_accept_raises(ws_server, tmp_path):
    rep = tmp_path / "r.json"
    resp = exchange(ws_server.addr, ws_request(target("/send-before-accept", report=str(rep))))
    r = read_report(rep)
    assert r["exc_type"] == "RuntimeError", r
    assert r["message"] == ("Expected ASGI message 'websocket.accept', 'websocket.close', or "
                            "'websocket.http.response.start' but got 'websocket.send'.")
    assert resp.status == 403, (resp.status, resp.body)


def test_accept_twice_raises(ws_server, tmp_path):
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(ws_server, "/accept-twice", report=str(rep))) as ws:
            msg = await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return msg, ws.close_code
    msg, code = run(main())
    r = read_report(rep)
    assert r["exc_type"] == "RuntimeError", r
    assert r["message"] == "Expected ASGI message 'websocket.send' or 'websocket.close', but got 'websocket.accept'."
    assert msg == "still open"
    assert code == 1000


def test_app_exception_after_accept_closes_1011(ws_server):
    async def main():
        async with connect(uri(ws_server, "/raise-after")) as ws:
            msg = await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return msg, ws.close_code
    msg, code = run(main())
    assert msg == "about to fail"
    assert code == 1011
    ws_server.wait_for_log(r"ws_raise_after", timeout=GUARD)


def test_app_returning_while_open_closes_1000(ws_server):
    async def main():
        async with connect(uri(ws_server, "/return-open")) as ws:
            msg = await ws.recv()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return msg, ws.close_code
    assert run(main()) == ("returning", 1000)


# --- flags -------------------------------------------------------------------------------

def test_max_size(narwhal, tmp_path):
    server = narwhal(APP, "--ws-max-size", "1024")
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(server, "/echo", report=str(rep))) as ws:
            await ws.send("a" * 1024)
            ok = await ws.recv()
            await ws.send("b" * 1025)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ok, ws.close_code
    ok, code = run(main())
    assert ok == "a" * 1024
    assert code == 1009
    r = read_report(rep)
    assert r["disconnect"]["code"] == 1009, r
    assert r["received"] == 1


def test_max_size_default_allows_large_messages(ws_server):
    async def main():
        async with connect(uri(ws_server, "/echo"), max_size=None) as ws:
            await ws.send(b"z" * (2 << 20))
            return len(await ws.recv())
    assert run(main()) == 2 << 20


async def _gated_exchange(server, tmp_path, queue_limited: bool):
    """Send m1, m2 and a ping to an app that receives nothing until go1 exists.

    The server answers a ping only while it reads the socket: with --ws-max-queue 1 it
    reads m1, then stops until the app receives, so the pong comes after "ack:m1"."""
    go1, go2 = tmp_path / "go1", tmp_path / "go2"
    async with connect(uri(server, "/gated", go1=str(go1), go2=str(go2))) as ws:
        assert await ws.recv() == "ready"
        await ws.send("m1")
        await ws.send("m2")
        pong = await ws.ping(b"probe")
        if not queue_limited:
            await asyncio.wait_for(pong, GUARD)  # read at once: the pong arrives before the app reads
        go1.touch()
        assert await asyncio.wait_for(ws.recv(), GUARD) == "ack:m1"
        pong_after_m1 = pong.done()
        go2.touch()
        assert await asyncio.wait_for(ws.recv(), GUARD) == "ack:m2"
        await asyncio.wait_for(pong, GUARD)
        return pong_after_m1


def test_max_queue_stops_reading(narwhal, tmp_path):
    server = narwhal(APP, "--ws-max-queue", "1")
    pong_after_m1 = run(_gated_exchange(server, tmp_path, queue_limited=True))
    assert not pong_after_m1, "the server read the ping behind a full queue (--ws-max-queue 1 not applied)"


def test_max_queue_larger_reads_ahead(narwhal, tmp_path):
    server = narwhal(APP, "--ws-max-queue", "8")
    assert run(_gated_exchange(server, tmp_path, queue_limited=False)) is True


def test_server_pings_and_responsive_peer_stays(narwhal, tmp_path):
    # A pong has about a second to arrive (Beast pings after half of interval + timeout
    # and gives up at the whole of it): room for a busy machine. Three pings take longer
    # than interval + timeout in all, so only the pongs can have kept the socket open.
    server = narwhal(APP, "--ws-ping-interval", "0.5", "--ws-ping-timeout", "1.5")
    rep = tmp_path / "r.json"
    with raw_handshake(server, target("/watch", report=str(rep))) as conn:
        assert read_frame(conn) == (0x1, b"ready")
        pings = 0
        while pings < 3:
            frame = read_frame(conn)
            assert frame is not None, "server closed a peer that answers pings"
            assert frame[0] == 0x9, f"expected a ping, got {frame}"
            pings += 1
            conn.send(encode_frame(0xA, frame[1]))
        conn.send(encode_frame(0x1, b"still here"))
        frame = read_frame(conn)
        while frame is not None and frame[0] == 0x9:
            conn.send(encode_frame(0xA, frame[1]))
            frame = read_frame(conn)
        assert frame == (0x1, b"still here")


def test_ping_timeout_closes_silent_peer(narwhal, tmp_path):
    server = narwhal(APP, "--ws-ping-interval", "0.3", "--ws-ping-timeout", "0.3")
    rep = tmp_path / "r.json"
    with raw_handshake(server, target("/watch", report=str(rep))) as conn:
        assert read_frame(conn) == (0x1, b"ready")
        frame = read_frame(conn)
        assert frame is not None and frame[0] == 0x9, f"expected a ping, got {frame}"
        # Never answer: the server must give up (close frame and/or EOF) within the guard.
        frames = []
        deadline = time.monotonic() + GUARD
        while True:
            if time.monotonic() > deadline:
                pytest.fail(f"server kept a silent peer open for {GUARD}s; frames since the first ping: {frames}")
            try:
                frame = read_frame(conn)
            except socket.timeout:
                pytest.fail(f"server kept a silent peer open; frames since the first ping: {frames}")
            if frame is None:
                break
            frames.append(frame[0])
        assert set(frames) <= {0x8, 0x9}, frames
    r = read_report(rep)
    print("app saw", r)
    assert r["disconnect"]["type"] == "websocket.disconnect"
    assert r["disconnect"]["code"] not in (1000, None), r


def test_no_pings_by_default_within_short_time(ws_server):
    """Default interval is 20 s: the first frame after "ready" is our echo, not a ping."""
    with raw_handshake(ws_server, "/watch") as conn:
        assert read_frame(conn) == (0x1, b"ready")
        conn.send(encode_frame(0x1, b"x"))
        assert read_frame(conn) == (0x1, b"x")


@pytest.mark.parametrize("flags", [(), ("--ws-per-message-deflate",),
                                   ("--ws-per-message-deflate", "True")])
def test_permessage_deflate_negotiated(narwhal, flags):
    server = narwhal(APP, *flags)
    text = "compress me " * 20000

    async def main():
        async with connect(uri(server, "/echo")) as ws:
            await ws.send(text)
            got = await ws.recv()
            return [type(e).__name__ for e in wsclient.extensions(ws)], wsclient.response_header(ws, "sec-websocket-extensions"), got
    exts, hdr, got = run(main())
    assert exts == ["PerMessageDeflate"], exts
    assert hdr is not None and "permessage-deflate" in hdr
    assert got == text


# narwhal's switch, and uvicorn's command line.
@pytest.mark.parametrize("flags", [("--no-ws-per-message-deflate",),
                                   ("--ws-per-message-deflate", "False")])
def test_permessage_deflate_disabled(narwhal, flags):
    server = narwhal(APP, *flags)

    async def main():
        async with connect(uri(server, "/echo")) as ws:
            await ws.send("plain")
            got = await ws.recv()
            return wsclient.extensions(ws), wsclient.response_header(ws, "sec-websocket-extensions"), got
    exts, hdr, got = run(main())
    assert exts == []
    assert hdr is None
    assert got == "plain"


def test_permessage_deflate_raw_offer(ws_server):
    """A raw offer of permessage-deflate is answered in the 101 response."""
    with RawConnection(ws_server.addr, timeout=GUARD) as conn:
        conn.send(request("GET", "/scope", headers=upgrade_headers(
            extra=[("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")])))
        resp = conn.read_response()
        assert resp.status == 101
        assert resp.header("sec-websocket-extensions") is not None
        assert "permessage-deflate" in resp.header("sec-websocket-extensions")


# --- shutdown -------------------------------------------------------------------------------

def test_sigterm_closes_1001_and_exits_0(narwhal, tmp_path):
    server = narwhal(APP)
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(server, "/watch", report=str(rep))) as ws:
            assert await ws.recv() == "ready"
            server.signal(signal.SIGTERM)
            await asyncio.wait_for(ws.wait_closed(), GUARD)
            return ws.close_code
    code = run(main())
    server.proc.wait(GUARD)
    assert code == 1001
    assert server.proc.returncode == 0, server.log()
    r = read_report(rep)
    assert r["disconnect"]["code"] == 1001, r


def test_slow_consumer_waits_by_default(narwhal, tmp_path):
    """--ws-slow-consumer wait (default): a client that stops reading makes send() wait;
    the socket is neither closed nor flooded; when the client goes, send() raises."""
    server = narwhal(APP, "--no-ws-per-message-deflate")
    rep = tmp_path / "r.json"
    sock = raw_upgrade(server, "/flood?" + urllib.parse.urlencode({"report": str(rep)}))
    try:
        time.sleep(1.0)  # the client stops reading (the behaviour under test) for a while
        assert not rep.exists(), "the app stopped sending although the client is only slow"
        assert "Closing a WebSocket" not in server.log()
    finally:
        sock.close()
    wait_for_file(rep)
    r = json.loads(rep.read_text())
    assert r["exc"] is not None and r["exc"]["is_client_disconnected"], r
    assert r["sent"] < 200, f"sent {r['sent']} x 64 KiB to a client that read nothing"


def test_slow_consumer_closed_with_1008(narwhal, tmp_path):
    """--ws-slow-consumer close: a client that stops reading is closed with 1008 after
    --ws-send-timeout; the app's send() raises ClientDisconnected (an OSError).

    The close frame waits behind the message being written, and the server cuts the
    socket one more --ws-send-timeout later: the client must start reading within that
    time to see the frame. 3 s leaves a busy machine room (with 0.3 s the test failed
    under load: the socket was cut before the client read on)."""
    server = narwhal(APP, "--no-ws-per-message-deflate", "--ws-slow-consumer", "close",
                     "--ws-send-timeout", "3")
    rep = tmp_path / "r.json"
    sock = raw_upgrade(server, "/flood?" + urllib.parse.urlencode({"report": str(rep)}))
    try:
        server.wait_for_log(r"Closing a WebSocket whose client did not read", timeout=GUARD)
        # What the client reads from now on: whole data frames, then a close frame with 1008.
        close = read_until_close_frame(sock)
        assert close[:2] == struct.pack("!H", 1008), close
        try:
            sock.sendall(encode_frame(0x8, close[:2]))  # the client's half of the close handshake
            end = sock.recv(1)
        except (BrokenPipeError, ConnectionResetError):
            end = b""  # cut already: the close was late, but the socket is closed
        assert end == b"", "the socket stayed open after the close frame"
    finally:
        sock.close()
    r = json.loads(wait_for_file(rep))
    assert r["exc"] is not None and r["exc"]["is_oserror"], r


def test_shutdown_drains_before_1001(narwhal, tmp_path):
    """On SIGTERM an open socket keeps working for --timeout-ws-drain, then gets 1001.
    The drain (4 s) is long enough for an echo on a busy machine; the close is checked
    not to come before it, measured from before the signal was sent."""
    server = narwhal(APP, "--timeout-ws-drain", "4")
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(server, "/echo", report=str(rep))) as ws:
            t0 = time.monotonic()
            server.signal(signal.SIGTERM)
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), GUARD) == "still here"
            await asyncio.wait_for(ws.wait_closed(), GUARD)
            return ws.close_code, time.monotonic() - t0
    code, waited = run(main())
    assert code == 1001
    assert waited >= 3.95, f"closed {waited:.2f}s after SIGTERM, before the 4 s drain period"
    server.proc.wait(GUARD)
    assert server.proc.returncode == 0, server.log()


# --- Starlette -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def starlette_ws():
    server = launch("ws_apps:starlette_app")
    yield server
    server.stop(signal.SIGTERM, timeout=5)


def test_starlette_endpoint_echo(starlette_ws, tmp_path):
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(starlette_ws, "/echo", report=str(rep))) as ws:
            got = []
            for m in ["a", "b c", "ü"]:
                await ws.send(m)
                got.append(await ws.recv())
            await ws.close(code=4005)
            return got
    assert run(main()) == ["echo: a", "echo: b c", "echo: ü"]
    assert read_report(rep) == {"close_code": 4005}


def test_starlette_endpoint_rejects_bytes_with_1003(starlette_ws, tmp_path):
    rep = tmp_path / "r.json"

    async def main():
        async with connect(uri(starlette_ws, "/echo", report=str(rep))) as ws:
            await ws.send(b"bytes")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code
    assert run(main()) == 1003
    assert read_report(rep) == {"close_code": 1011}


def test_starlette_websocket_route_json(starlette_ws):
    async def main():
        async with connect(uri(starlette_ws, "/json")) as ws:
            await ws.send(json.dumps({"nums": [1, 2, 3.5], "name": "ü"}))
            reply = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return reply, ws.close_code
    reply, code = run(main())
    assert reply == {"got": {"nums": [1, 2, 3.5], "name": "ü"}, "sum": 6.5, "path": "/json"}
    assert code == 1000


def test_starlette_unknown_route_is_403(starlette_ws):
    resp = exchange(starlette_ws.addr, ws_request("/nope"))
    assert resp.status == 403, (resp.status, resp.body)


def test_forged_compressed_length_does_not_take_the_server_down(narwhal):
    """A compressed frame claiming 2^46 bytes (Beast 1.74 would allocate the claim) only
    closes that socket; the server keeps serving HTTP and WebSocket."""
    import zlib

    server = narwhal(APP, "--io-threads", "1")
    sock = socket.create_connection(server.addr, timeout=GUARD)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                 f"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101") and b"permessage-deflate" in head, head
    deflate = zlib.compressobj(wbits=-15)
    payload = (deflate.compress(b"a" * 1000) + deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
    mask = os.urandom(4)
    sock.sendall(bytes([0xC2, 0xFF]) + struct.pack("!Q", 1 << 46) + mask
                 + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    sock.close()
    resp = exchange(server.addr, request("GET", "/scope"), check_closed=False)
    assert resp.status in (200, 404, 403), resp.status  # answered: the I/O thread is alive

    async def main():
        async with connect(uri(server, "/echo")) as ws:
            await ws.send("still alive")
            return await asyncio.wait_for(ws.recv(), GUARD)
    assert run(main()) == "still alive"
    assert "I/O thread" not in server.log(), server.log()
