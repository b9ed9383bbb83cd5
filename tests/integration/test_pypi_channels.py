"""Current Django Channels (the pinned PyPI release) served by narwhal with `--venv`:
HTTP through Django, WebSocket through async consumers and the in-memory channel layer."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

import pypi_checks as checks
import wsclient
from venv_util import serve_pypi

APP = "channels_site.asgi:application"


@pytest.fixture(scope="module")
def server():
    yield from serve_pypi(APP, env={"DJANGO_SETTINGS_MODULE": "channels_site.settings"})


def _ws(server, path: str):
    return websockets.connect(f"ws://{server.host}:{server.port}{path}")


def test_imports_the_pinned_releases_from_the_venv(server):
    checks.check_from_venv(server, "channels", "django")


def test_consumer_echo_with_url_route_kwargs(server):
    async def talk():
        async with _ws(server, "/ws/echo/narwhal/") as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x01\x02\x03" * 1000)
            data = await ws.recv()
            await ws.send("close")
            await ws.wait_closed()
            return text, data, ws.close_code

    text, data, code = asyncio.run(asyncio.wait_for(talk(), 20))
    assert text == "narwhal: hello"
    assert data == (b"\x01\x02\x03" * 1000)[::-1]
    assert code == 4000


def test_group_broadcast_reaches_every_member(server):
    async def talk():
        async with _ws(server, "/ws/room/lobby/") as a, _ws(server, "/ws/room/lobby/") as b:
            assert json.loads(await a.recv()) == {"joined": "lobby"}
            assert json.loads(await b.recv()) == {"joined": "lobby"}
            await a.send(json.dumps({"from": "a"}))
            return json.loads(await a.recv()), json.loads(await b.recv())

    got_a, got_b = asyncio.run(asyncio.wait_for(talk(), 20))
    assert got_a == got_b == {"room": "lobby", "message": {"from": "a"}}


def test_unknown_websocket_route_fails_the_handshake(server):
    """URLRouter raises for a path it does not know; before the handshake that is a 500
    (as under uvicorn), with the app's error in the log."""

    async def talk():
        async with _ws(server, "/ws/nowhere/"):
            pass

    with pytest.raises(wsclient.HandshakeRejected) as info:
        asyncio.run(asyncio.wait_for(talk(), 20))
    assert wsclient.rejected_status(info.value) == 500
    server.wait_for_log(r"No route found for path 'ws/nowhere/'")
