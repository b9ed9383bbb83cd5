"""Current Falcon's ASGI app (the pinned PyPI release) served by narwhal with `--venv`."""

from __future__ import annotations

import pytest

import pypi_checks as checks
from venv_util import serve_pypi

APP = "falcon_app:app"


@pytest.fixture(scope="module")
def server():
    yield from serve_pypi(APP)


def test_imports_the_pinned_release_from_the_venv(server):
    checks.check_from_venv(server, "falcon")


def test_path_fields_and_query(server):
    assert checks.get_json(server, "/items/42", params={"q": "tusk"}) == {"item_id": 42, "q": "tusk"}
    with checks.client(server) as c:
        r = c.get("/items/forty-two")
    assert r.status_code == 404


def test_json_media_and_error(server):
    with checks.client(server) as c:
        r = c.put("/items/9", json={"name": "tusk", "n": [1, 2, 3]})
        assert r.status_code == 201
        assert r.json() == {"item_id": 9, "received": {"name": "tusk", "n": [1, 2, 3]}}
        r = c.put("/items/9", json={"name": 5})
    assert r.status_code == 400
    assert r.json() == {"title": "Invalid item", "description": "name must be a string"}


def test_streaming(server):
    checks.check_stream(server)


def test_multipart_upload_byte_exact(server):
    checks.check_upload(server, size=300_000, seed=8)


def test_upload_byte_exact_with_curl(server, tmp_path):
    checks.check_upload_with_curl(server, tmp_path)


def test_lifespan_state_is_visible_in_requests(server):
    assert checks.get_json(server, "/state") == {"started_by": "falcon process_startup"}


def test_lifespan_shutdown_runs_after_sigterm(narwhal):
    checks.check_lifespan_shutdown(narwhal, APP, "falcon")


def test_uri(server):
    assert checks.get_json(server, "/where") == {
        "url": f"{server.url}/where", "relative_uri": "/where", "path": "/where", "root_path": ""}
