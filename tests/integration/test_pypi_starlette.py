"""Current Starlette (the pinned PyPI release) served by narwhal with `--venv`."""

from __future__ import annotations

import asyncio
import random

import pytest
import websockets

import pypi_checks as checks
import wsclient
from venv_util import serve_pypi

APP = "starlette_app:app"


@pytest.fixture(scope="module")
def server():
    yield from serve_pypi(APP)


def test_imports_the_pinned_release_from_the_venv(server):
    checks.check_from_venv(server, "starlette", "uvloop")


def test_runs_on_the_venvs_uvloop(server):
    """`--loop auto` looks for uvloop after the venv is on the path: the venv's release."""
    assert checks.get_json(server, "/version")["loop"] == "uvloop.Loop"


def test_path_params_and_query(server):
    with checks.client(server) as c:
        r = c.get("/items/42", params={"q": "tusk"})
        assert r.status_code == 200
        assert r.json() == {"item_id": 42, "q": "tusk"}
        assert c.get("/items/forty-two").status_code == 404  # the int converter does not match


def test_json_body(server):
    with checks.client(server) as c:
        r = c.post("/echo", json={"b": [1, 2], "a": "ü"})
    assert r.status_code == 200
    assert r.json() == {"received": {"b": [1, 2], "a": "ü"}, "keys": ["a", "b"]}


def test_streaming(server):
    checks.check_stream(server)


def test_upload_byte_exact(server):
    checks.check_upload(server)


def test_upload_byte_exact_with_curl(server, tmp_path):
    checks.check_upload_with_curl(server, tmp_path)


def test_file_download_and_range(server):
    """FileResponse: the whole file (through http.response.pathsend, which narwhal offers)
    under one Content-Length, and a Range answered with body messages."""
    data = random.Random(9).randbytes(300_000)  # the app's FILE_SEED and FILE_SIZE
    with checks.client(server) as c:
        r = c.get("/file")
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(data))
        assert "transfer-encoding" not in r.headers
        assert r.content == data
        r = c.get("/file", headers={"range": "bytes=100000-100999"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100000-100999/{len(data)}"
    assert r.content == data[100000:101000]


def test_lifespan_state_is_visible_in_requests(server):
    assert checks.get_json(server, "/state") == {"started_by": "starlette lifespan"}


def test_lifespan_shutdown_runs_after_sigterm(narwhal):
    checks.check_lifespan_shutdown(narwhal, APP, "starlette")


def test_urls_mount_and_slash_redirect(server):
    """Without --root-path: the URLs Starlette builds from the scope, a mounted router, and
    the redirect that adds a missing trailing slash."""
    where = checks.get_json(server, "/where")
    assert where["url"] == f"{server.url}/where"
    assert where["url_for"] == f"{server.url}/items/7"
    assert checks.get_json(server, "/sub/hello") == {"sub": "hello", "url_for": f"{server.url}/sub/hello"}
    with checks.client(server) as c:
        r = c.get("/slash")
    assert r.status_code == 307
    assert r.headers["location"] == f"{server.url}/slash/"


def test_websocket_echo(server):
    async def talk():
        async with websockets.connect(f"ws://{server.host}:{server.port}/ws") as ws:
            await ws.send("hello")
            assert await ws.recv() == "starlette: hello"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x02\x01\x00"
            await ws.send("close")
            await ws.wait_closed()
            return ws.close_code, ws.close_reason

    assert asyncio.run(asyncio.wait_for(talk(), 20)) == (4000, "asked to")


def test_websocket_denial_response(server):
    """send_denial_response: the handshake is answered with the app's own HTTP response."""
    async def talk():
        async with websockets.connect(f"ws://{server.host}:{server.port}/ws-deny"):
            pass

    with pytest.raises(wsclient.HandshakeRejected) as info:
        asyncio.run(asyncio.wait_for(talk(), 20))
    assert wsclient.rejected_status(info.value) == 403
    assert wsclient.rejected_headers(info.value)["x-why"] == "denied by app"
