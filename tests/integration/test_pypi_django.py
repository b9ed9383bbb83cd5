"""Current Django LTS (the pinned PyPI release): an ASGI project with async views,
served by narwhal with `--venv`."""

from __future__ import annotations

import pytest

import pypi_checks as checks
from venv_util import serve_pypi

APP = "django_site.asgi:application"


@pytest.fixture(scope="module")
def server():
    yield from serve_pypi(APP, env={"DJANGO_SETTINGS_MODULE": "django_site.settings"})


def test_imports_the_pinned_release_from_the_venv(server):
    checks.check_from_venv(server, "django", "asgiref")


def test_django_declines_lifespan_and_serves(server):
    """Django has no lifespan support: narwhal's `--lifespan auto` notes it and serves."""
    assert "ASGI 'lifespan' protocol appears unsupported." in server.log()


def test_async_view_path_params_and_query(server):
    body = checks.get_json(server, "/items/42", params={"q": "tusk"})
    # An async view runs on the server's event loop, not in a thread of asgiref's.
    assert body == {"item_id": 42, "q": "tusk", "async_view_on_loop": True}
    with checks.client(server) as c:
        assert c.get("/items/forty-two").status_code == 404


def test_json_body(server):
    with checks.client(server) as c:
        r = c.post("/echo", json={"b": [1, 2], "a": "ü"})
    assert r.status_code == 200, r.text[:500]
    assert r.json() == {"received": {"b": [1, 2], "a": "ü"}, "keys": ["a", "b"]}


def test_async_streaming(server):
    checks.check_stream(server)


def test_upload_byte_exact(server):
    checks.check_upload(server, size=300_000, seed=5)


def test_upload_byte_exact_with_curl(server, tmp_path):
    # With Content-Length: Django's multipart parser reads nothing from a chunked body
    # (no CONTENT_LENGTH); it answers 500 for that under any server, uvicorn included.
    checks.check_upload_with_curl(server, tmp_path, chunked=False)


def test_urls_and_append_slash_redirect(server):
    assert checks.get_json(server, "/where") == {
        "url": f"{server.url}/where", "reverse": "/items/7", "request_path": "/where",
        "path_info": "/where", "script_name": ""}
    with checks.client(server) as c:
        r = c.get("/slash")
    assert r.status_code == 301
    assert r.headers["location"] == "/slash/"
