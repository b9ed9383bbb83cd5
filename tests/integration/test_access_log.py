"""The access log line of a WebSocket session, written when the session ends.

Real binary, real `websockets` client, the ws_apps test app. A line names the client
address, the requested path and query, the close code and who closed (client, app,
server), the duration and the messages and payload bytes each way; a refused handshake
names the HTTP status instead. --log-format json carries the same facts as members;
--no-access-log turns the line off like the HTTP access line.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import urllib.parse

import pytest

from conftest import serving
from rawhttp import wait_for_file
import wsclient

APP = "ws_apps:app"
GUARD = 10.0  # failure guard for every wait

# Number of seconds as the line writes it.
SECONDS = r"\d+\.\d{3}"


@pytest.fixture(scope="module")
def text_server():
    yield from serving(APP)


@pytest.fixture(scope="module")
def json_server():
    yield from serving(APP, "--log-format", "json")


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def connect(server, target: str):
    return wsclient.connect(f"ws://{server.host}:{server.port}{target}", ping_interval=None,
                            open_timeout=GUARD, close_timeout=GUARD)


async def echo_session(server, target: str) -> tuple[str, int]:
    """Two messages each way (5 text bytes, 3 binary bytes); the client closes with 1000.
    Returns the client's own address as the server sees it."""
    async with connect(server, target) as ws:
        host, port = ws.local_address[:2]
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01\x02")
        assert await ws.recv() == b"\x00\x01\x02"
    return host, port


def json_lines(server, event: str) -> list[dict]:
    out = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == event:
                out.append(record)
    return out


# --- text format ---------------------------------------------------------------------------

def test_client_close_line(text_server):
    host, port = run(echo_session(text_server, "/echo?room=a%20b&x=1"))
    # Counts are of payload bytes before permessage-deflate (which the client negotiates).
    text_server.wait_for_log(
        rf'INFO: +{re.escape(host)}:{port} - "WebSocket /echo\?room=a%20b&x=1" 1000 closed by '
        rf"client after {SECONDS} s, in: 2 messages 8 bytes, out: 2 messages 8 bytes$",
        timeout=GUARD)


def test_app_close_line(text_server):
    async def main():
        async with connect(text_server, "/close?code=4001&reason=done") as ws:
            port = ws.local_address[1]
            assert await ws.recv() == "before close"
            await asyncio.wait_for(ws.wait_closed(), GUARD)
            assert ws.close_code == 4001
            return port

    port = run(main())
    text_server.wait_for_log(
        rf'- "WebSocket /close\?code=4001&reason=done" 4001 closed by app after {SECONDS} s, '
        rf"in: 0 messages 0 bytes, out: 1 messages 12 bytes$", timeout=GUARD)
    assert f":{port} - \"WebSocket /close?" in text_server.log()


def test_refused_handshake_line(text_server):
    async def main():
        with pytest.raises(wsclient.HandshakeRejected) as refused:
            async with connect(text_server, "/reject?who=me"):
                pass
        return wsclient.rejected_status(refused.value)

    assert run(main()) == 403
    text_server.wait_for_log(rf'- "WebSocket /reject\?who=me" 403 refused after {SECONDS} s$',
                             timeout=GUARD)


def test_server_close_line_at_shutdown(narwhal):
    server = narwhal(APP, "--timeout-ws-drain", "0.2")

    async def main():
        async with connect(server, "/watch") as ws:
            assert await ws.recv() == "ready"
            server.signal(signal.SIGTERM)
            await asyncio.wait_for(ws.wait_closed(), GUARD)
            return ws.close_code

    assert run(main()) == 1001
    server.proc.wait(GUARD)
    assert re.search(rf'- "WebSocket /watch" 1001 closed by server after {SECONDS} s, in: 0 '
                     rf"messages 0 bytes, out: 1 messages 5 bytes$", server.log(), re.M), server.log()


def test_oversized_message_is_closed_by_server(narwhal):
    server = narwhal(APP, "--ws-max-size", "1024")

    async def main():
        async with connect(server, "/watch") as ws:
            assert await ws.recv() == "ready"
            await ws.send("x" * 2048)
            await asyncio.wait_for(ws.wait_closed(), GUARD)
            return ws.close_code

    assert run(main()) == 1009
    server.wait_for_log(rf'- "WebSocket /watch" 1009 closed by server after {SECONDS} s',
                        timeout=GUARD)


# --- json format ---------------------------------------------------------------------------

def test_json_members(json_server):
    host, port = run(echo_session(json_server, "/echo?x=1"))
    json_server.wait_for_log(r'"event": "websocket".*"path": "/echo"', timeout=GUARD)
    records = [r for r in json_lines(json_server, "websocket") if r["client"] == f"{host}:{port}"]
    assert len(records) == 1, json_server.log()
    r = records[0]
    assert r["level"] == "info"
    assert r["path"] == "/echo"
    assert r["query_string"] == "x=1"
    assert r["status"] == 101
    assert r["close_code"] == 1000
    assert r["closed_by"] == "client"
    assert isinstance(r["duration_s"], float) and r["duration_s"] >= 0
    assert (r["messages_in"], r["bytes_in"], r["messages_out"], r["bytes_out"]) == (2, 8, 2, 8)
    assert f'{host}:{port} - "WebSocket /echo?x=1" 1000 closed by client' in r["message"]


def test_json_refused(json_server):
    async def main():
        with pytest.raises(wsclient.HandshakeRejected) as refused:
            async with connect(json_server, "/deny"):
                pass
        return wsclient.rejected_status(refused.value)

    assert run(main()) == 401
    json_server.wait_for_log(r'"event": "websocket".*"path": "/deny"', timeout=GUARD)
    (r,) = [r for r in json_lines(json_server, "websocket") if r["path"] == "/deny"]
    assert r["status"] == 401
    assert r["close_code"] is None
    assert r["closed_by"] is None
    assert (r["messages_in"], r["messages_out"]) == (0, 0)
    assert '"WebSocket /deny" 401 refused' in r["message"]


# --- off -----------------------------------------------------------------------------------

@pytest.mark.parametrize("flags", [("--no-access-log",), ("--no-access-log", "--log-format", "json")])
def test_no_access_log(narwhal, tmp_path, flags):
    server = narwhal(APP, *flags)
    report = tmp_path / "echo.json"
    run(echo_session(server, "/echo?report=" + urllib.parse.quote(str(report))))
    wait_for_file(report, timeout=GUARD)  # the app saw the disconnect: the session is over
    assert server.stop() == 0
    log = server.log()
    assert "WebSocket /echo" not in log, log
    assert '"event": "websocket"' not in log, log
    assert "Application startup complete." in log  # other INFO lines stay


def test_access_log_on_logs_what_off_hides(narwhal, tmp_path):
    """The control for test_no_access_log: the same session with the default flags is logged."""
    server = narwhal(APP)
    report = tmp_path / "echo.json"
    run(echo_session(server, "/echo?report=" + urllib.parse.quote(str(report))))
    wait_for_file(report, timeout=GUARD)
    assert server.stop() == 0
    assert re.search(r'"WebSocket /echo\?report=\S+" 1000 closed by client', server.log()), \
        server.log()
