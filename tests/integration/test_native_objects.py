"""The native request objects (`_narwhal`'s heap types): what an app can see of them,
and that a finished request leaves none behind without the cycle collector's help."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

from conftest import serving
from rawhttp import RawConnection, exchange, request

APP = "native_objects:app"
GUARD = 10.0  # failure guard for every wait


@pytest.fixture(scope="module")
def server():
    yield from serving(APP)


def get_json(server, target: str) -> dict:
    resp = exchange(server.addr, request("GET", target), check_closed=False)
    assert resp.status == 200, (resp.status, resp.body[:300], server.log()[-2000:])
    return json.loads(resp.body)


def test_request_objects_are_heap_types_of_the_module(server):
    facts = get_json(server, "/types")
    assert facts["receive"] and facts["send"] and facts["step"], facts
    assert facts["module"] == "narwhal", facts
    assert facts["tracked"] == [True, True, True], facts
    assert facts["coroutine_functions"] == [True, True], facts
    # Made only by the server: calling a type from Python is a TypeError, not a crash.
    for name, error in facts["refused"].items():
        assert error and "cannot create" in error, (name, facts)


def test_finished_requests_are_freed_without_the_cycle_collector(server):
    # Keep-alive requests, bodies in one piece and in several, app errors (500), and
    # WebSocket sessions: none may leave its receive/send/step objects in a cycle.
    with RawConnection(server.addr, GUARD) as conn:
        for i in range(20):
            conn.try_send(request("GET", f"/echo?i={i}"))
            assert conn.read_response("GET").status == 200
        for size in (1, 70_000, 300_000):
            body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            conn.try_send(request("POST", "/echo", body=body))
            resp = conn.read_response("POST")
            assert resp.status == 200 and resp.body == body
    for _ in range(3):
        resp = exchange(server.addr, request("POST", "/raise", body=b"abc"), check_closed=False)
        assert resp.status == 500

    async def ws_sessions() -> list[str]:
        out = []
        for i in range(3):
            async with websockets.connect(f"ws://{server.host}:{server.port}/ws") as ws:
                await ws.send(f"hello {i}")
                out.append(await ws.recv())
        return out
    assert asyncio.run(asyncio.wait_for(ws_sessions(), 30)) == ["hello 0", "hello 1", "hello 2"]

    # Only the /live request's own objects remain. A leak never gets there; the wait
    # only covers a WebSocket task still finishing after its close frame went out.
    deadline = time.monotonic() + GUARD
    while True:
        counts = get_json(server, "/live")
        if counts == {"Receive": 1, "Send": 1, "RequestStep": 1} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert counts == {"Receive": 1, "Send": 1, "RequestStep": 1}, (counts, server.log()[-2000:])
