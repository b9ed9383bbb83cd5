"""Current Quart (the pinned PyPI release) served by narwhal with `--venv`."""

from __future__ import annotations

import asyncio

import pytest
import websockets

import pypi_checks as checks
from venv_util import serve_pypi

APP = "quart_app:app"


@pytest.fixture(scope="module")
def server():
    yield from serve_pypi(APP)


def test_imports_the_pinned_release_from_the_venv(server):
    checks.check_from_venv(server, "quart", "werkzeug")


def test_path_params_and_query(server):
    assert checks.get_json(server, "/items/42", params={"q": "tusk"}) == {"item_id": 42, "q": "tusk"}
    with checks.client(server) as c:
        assert c.get("/items/forty-two").status_code == 404


def test_json_body(server):
    with checks.client(server) as c:
        r = c.post("/echo", json={"b": [1, 2], "a": "ü"})
    assert r.status_code == 200
    assert r.json() == {"received": {"b": [1, 2], "a": "ü"}, "keys": ["a", "b"]}


def test_streaming(server):
    checks.check_stream(server)


def test_upload_byte_exact(server):
    checks.check_upload(server, size=300_000, seed=7)


def test_lifespan_state_is_visible_in_requests(server):
    assert checks.get_json(server, "/state") == {"started_by": "quart before_serving"}


def test_lifespan_shutdown_runs_after_sigterm(narwhal):
    checks.check_lifespan_shutdown(narwhal, APP, "quart")


def test_urls(server):
    assert checks.get_json(server, "/where") == {
        "url": f"{server.url}/where", "url_for": f"{server.url}/items/7", "root_path": "",
        "path": "/where"}


def test_websocket_text_bytes_and_close_code(server):
    async def talk():
        async with websockets.connect(f"ws://{server.host}:{server.port}/ws") as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(bytes(range(256)))
            data = await ws.recv()
            await ws.send("close")
            await ws.wait_closed()
            return text, data, ws.close_code, ws.close_reason

    text, data, code, reason = asyncio.run(asyncio.wait_for(talk(), 20))
    assert text == "quart: hello"
    assert data == bytes(range(256))[::-1]
    assert (code, reason) == (4000, "asked to")
