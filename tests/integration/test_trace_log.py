"""--log-level trace: every ASGI message an app receives and sends, uvicorn's message
logger style.

One TRACE line per message, `ASGI [N] Receive {...}` / `ASGI [N] Send {...}`, N the
request id (the same for every message of one request), the message as a Python dict
with payloads shown by their size ('<5 bytes>', '<5 chars>') and headers as '<...>':
the payload itself never reaches the log. A message the app waited for (receive()
parked on a future until the rest of the body came) is logged like one that was ready.
Below trace level there are no such lines.

Real binary, raw sockets and the `websockets` client, raw_apps and ws_apps.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from conftest import serving
from rawhttp import TIMESTAMP, RawConnection, request
import wsclient

GUARD = 20.0  # failure guard for every wait
TRACE = re.compile("^" + TIMESTAMP + r"TRACE: +ASGI \[(\d+)\] (Receive|Send) (\{.*\})$")
SECRET = b"secret-payload-7f3a"


@pytest.fixture(scope="module")
def trace_server():
    yield from serving("raw_apps:echo_body", "--log-level", "trace")


def traces(server) -> list[tuple[str, str, str]]:
    return [m.groups() for m in map(TRACE.match, server.log().splitlines()) if m]


def wait_traces(server, pred, what: str) -> list[tuple[str, str, str]]:
    deadline = time.monotonic() + GUARD
    while True:
        found = traces(server)
        if pred(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no trace lines {what} within {GUARD}s:\n{server.log()}")
        time.sleep(0.02)  # poll interval


def of_request(found, rid: str) -> list[tuple[str, str]]:
    return [(direction, message) for i, direction, message in found if i == rid]


def test_http_messages_are_traced_with_sizes_not_payloads(trace_server):
    with RawConnection(trace_server.addr, timeout=GUARD) as conn:
        conn.send(request("POST", "/echo", body=SECRET, headers=[("Connection", "close")]))
        resp = conn.read_response()
    assert resp.status == 200 and resp.body == SECRET
    n = len(SECRET)
    found = wait_traces(trace_server, lambda f: any("http.response.body" in m for _, _, m in f),
                        "for the response body")
    rid = next(i for i, _, m in found if "http.response.body" in m)
    messages = of_request(found, rid)
    assert messages == [
        ("Receive", f"{{'type': 'http.request', 'body': '<{n} bytes>', 'more_body': False}}"),
        ("Send", "{'type': 'http.response.start', 'status': 200, 'headers': '<...>'}"),
        ("Send", f"{{'type': 'http.response.body', 'body': '<{n} bytes>'}}"),
    ], messages
    assert SECRET.decode() not in trace_server.log()


def test_a_message_the_app_waited_for_is_traced(trace_server):
    first, rest = b"0123456789", b"abcdefghij"
    with RawConnection(trace_server.addr, timeout=GUARD) as conn:
        conn.send(b"POST /wait HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 20\r\n\r\n" + first)
        # The app has read the first part and waits in receive() for more.
        found = wait_traces(trace_server, lambda f: any("'more_body': True" in m for _, _, m in f),
                            "for the first part")
        rid = next(i for i, _, m in found if "'more_body': True" in m)
        conn.send(rest)
        resp = conn.read_response()
    assert resp.status == 200 and resp.body == first + rest
    found = wait_traces(trace_server, lambda f: any(i == rid and "http.response.body" in m
                                                    for i, _, m in f), "for the response")
    received = [m for d, m in of_request(found, rid) if d == "Receive"]
    sizes = [int(s) for m in received for s in re.findall(r"'body': '<(\d+) bytes>'", m)]
    assert sum(sizes) == 20 and len(received) >= 2, received
    assert received[-1].endswith("'more_body': False}"), received


def test_websocket_messages_are_traced(narwhal):
    server = narwhal("ws_apps:app", "--log-level", "trace")

    async def session():
        async with wsclient.connect(f"ws://{server.host}:{server.port}/echo", ping_interval=None,
                                    open_timeout=GUARD, close_timeout=GUARD) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x00\x01\x02"

    asyncio.run(asyncio.wait_for(session(), 30))
    found = wait_traces(server, lambda f: any("websocket.disconnect" in m for _, _, m in f),
                        "for the disconnect")
    rid = next(i for i, _, m in found if "websocket.connect" in m)
    messages = of_request(found, rid)
    assert ("Receive", "{'type': 'websocket.connect'}") in messages, messages
    assert ("Send", "{'type': 'websocket.accept'}") in messages, messages
    assert ("Send", "{'type': 'websocket.send', 'text': '<5 chars>'}") in messages, messages
    assert ("Send", "{'type': 'websocket.send', 'bytes': '<3 bytes>'}") in messages, messages
    assert any(d == "Receive" and "'text': '<5 chars>'" in m for d, m in messages), messages
    assert any(d == "Receive" and "'bytes': '<3 bytes>'" in m for d, m in messages), messages


def test_no_message_lines_below_trace_level(narwhal):
    server = narwhal("raw_apps:echo_body", "--log-level", "debug")
    with RawConnection(server.addr, timeout=GUARD) as conn:
        conn.send(request("POST", "/echo", body=SECRET, headers=[("Connection", "close")]))
        assert conn.read_response().status == 200
    server.stop()
    assert "ASGI [" not in server.log(), server.log()
