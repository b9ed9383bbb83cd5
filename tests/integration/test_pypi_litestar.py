"""Current Litestar (the pinned PyPI release) served by narwhal with `--venv`."""

from __future__ import annotations

import asyncio

import pytest
import websockets

import pypi_checks as checks
from venv_util import serve_pypi

APP = "litestar_app:app"


@pytest.fixture(scope="module")
def server():
    yield from serve_pypi(APP)


def test_imports_the_pinned_release_from_the_venv(server):
    checks.check_from_venv(server, "litestar", "msgspec")


def test_path_params_and_query(server):
    assert checks.get_json(server, "/items/42", params={"q": "tusk"}) == {"item_id": 42, "q": "tusk"}
    with checks.client(server) as c:
        r = c.get("/items/forty-two")
    assert r.status_code == 404
    assert r.json() == {"status_code": 404, "detail": "Not Found"}


def test_body_is_validated_into_a_dataclass(server):
    with checks.client(server) as c:
        r = c.post("/items", json={"name": "tusk", "price": 2})
    assert r.status_code == 201  # Litestar's default for POST
    assert r.json() == {"name": "tusk", "price": 2.0, "tags": [], "total": 4.0}


def test_validation_error_400(server):
    with checks.client(server) as c:
        r = c.post("/items", json={"price": "x"})
        assert r.status_code == 400
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {
            "status_code": 400, "detail": "Validation failed for POST /items",
            "extra": [{"message": "Expected `float`, got `str`", "key": "price", "source": "body"}],
        }
        r = c.post("/items", content=b'{"name": ', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"status_code": 400, "detail": "Input data was truncated"}


def test_streaming(server):
    checks.check_stream(server)


def test_multipart_upload_byte_exact(server):
    checks.check_upload(server, size=250_000, seed=6)


def test_lifespan_state_is_visible_in_requests(server):
    assert checks.get_json(server, "/state") == {"started_by": "litestar lifespan"}


def test_lifespan_shutdown_runs_after_sigterm(narwhal):
    checks.check_lifespan_shutdown(narwhal, APP, "litestar")


def test_urls(server):
    assert checks.get_json(server, "/where") == {
        "url": f"{server.url}/where", "url_for": f"{server.url}/items/7", "root_path": "",
        "path": "/where"}


def test_websocket_echo(server):
    async def talk():
        async with websockets.connect(f"ws://{server.host}:{server.port}/ws") as ws:
            replies = []
            for word in ("one", "two", "ü" * 1000):
                await ws.send(word)
                replies.append(await ws.recv())
            await ws.send("close")
            await ws.wait_closed()
            return replies, ws.close_code, ws.close_reason

    replies, code, reason = asyncio.run(asyncio.wait_for(talk(), 20))
    assert replies == ["litestar: one", "litestar: two", "litestar: " + "ü" * 1000]
    assert (code, reason) == (4000, "asked to")
