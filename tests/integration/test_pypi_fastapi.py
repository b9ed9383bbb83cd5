"""Current FastAPI with pydantic v2 (the pinned PyPI releases), served by narwhal that
finds the venv through $VIRTUAL_ENV, as an activated virtualenv would set it."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

import pypi_checks as checks
from venv_util import serve_pypi

APP = "fastapi_app:app"


@pytest.fixture(scope="module")
def server():
    yield from serve_pypi(APP, via="env")


def test_imports_the_pinned_releases_from_the_venv(server):
    checks.check_from_venv(server, "fastapi", "pydantic", "starlette")


def test_path_and_query_params(server):
    assert checks.get_json(server, "/items/42", params={"q": "tusk", "limit": "3"}) == {
        "item_id": 42, "q": "tusk", "limit": 3}
    assert checks.get_json(server, "/items/1") == {"item_id": 1, "q": None, "limit": 10}


def test_query_validation_error_is_pydantic_v2_shaped(server):
    with checks.client(server) as c:
        r = c.get("/items/1", params={"limit": "101"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"detail": [{
        "type": "less_than_equal", "loc": ["query", "limit"],
        "msg": "Input should be less than or equal to 100", "input": "101", "ctx": {"le": 100},
    }]}


def test_body_model_validates_and_converts(server):
    with checks.client(server) as c:
        r = c.post("/items", json={"name": "Tusk", "price": 2.5, "tags": ["A", "b"]})
    assert r.status_code == 200
    assert r.json() == {"name": "Tusk", "price": 2.5, "tags": ["a", "b"], "total": 5.0}


def test_body_validation_error_422(server):
    sent = {"price": 0, "tags": ["A"]}
    with checks.client(server) as c:
        r = c.post("/items", json=sent)
    assert r.status_code == 422
    assert r.json() == {"detail": [
        {"type": "missing", "loc": ["body", "name"], "msg": "Field required", "input": sent},
        {"type": "greater_than", "loc": ["body", "price"], "msg": "Input should be greater than 0",
         "input": 0, "ctx": {"gt": 0.0}},
    ]}


def test_malformed_json_body_422(server):
    with checks.client(server) as c:
        r = c.post("/items", content=b'{"name": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert (error["type"], error["loc"][0], error["msg"]) == ("json_invalid", "body", "JSON decode error")


def test_streaming(server):
    checks.check_stream(server, line="line {i}\n")


def test_upload_file_byte_exact(server):
    checks.check_upload(server, size=400_000, seed=3)


def test_lifespan_state_is_visible_in_requests(server):
    assert checks.get_json(server, "/state") == {"model_name": "loaded-at-startup"}


def test_lifespan_shutdown_runs_after_sigterm(narwhal):
    checks.check_lifespan_shutdown(narwhal, APP, "fastapi")


def test_urls_and_mounted_app(server):
    where = checks.get_json(server, "/where")
    assert where == {"url": f"{server.url}/where", "url_for": f"{server.url}/items/7",
                     "root_path": "", "path": "/where"}
    assert checks.get_json(server, "/sub/hello") == {"sub": "hello", "root_path": "/sub"}
    with checks.client(server) as c:
        r = c.get("/openapi.json")
    assert r.status_code == 200
    assert r.json()["openapi"].startswith("3.")
    assert "/items/{item_id}" in r.json()["paths"]


def test_websocket_json_with_query_param(server):
    async def talk():
        url = f"ws://{server.host}:{server.port}/ws?greeting=hi"
        async with websockets.connect(url) as ws:
            answers = []
            for n in range(3):
                await ws.send(json.dumps({"n": n}))
                answers.append(json.loads(await ws.recv()))
            return answers

    answers = asyncio.run(asyncio.wait_for(talk(), 20))
    assert answers == [{"greeting": "hi", "echo": {"n": n}} for n in range(3)]
