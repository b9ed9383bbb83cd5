"""`--root-path /api` with current framework releases: the app sits behind a proxy that
serves it under /api and strips that prefix, so narwhal receives `/where` for the
client's `/api/where`. What a client must see: URLs, url_for/reverse and redirects that
carry the prefix, mounted sub-apps that still route, and no route for `/api/...`
(that would be the client's `/api/api/...`).

The ASGI spec has `path` and `raw_path` include `root_path`; uvicorn does so since 0.26,
narwhal does too (python/scope.cpp; README "ASGI behaviour"), and the current releases of
Starlette, FastAPI, Django and Quart rely on it. Falcon 4 is the exception: it routes on
`path` as given, so under `--root-path` its routes must carry the prefix, exactly as
under uvicorn 0.54.
"""

from __future__ import annotations

import pytest

import pypi_checks as checks
from venv_util import serve_pypi

ROOT = "/api"


def _serve(app: str, **kw):
    yield from serve_pypi(app, "--root-path", ROOT, **kw)


@pytest.fixture(scope="module")
def starlette_server():
    yield from _serve("starlette_app:app")


@pytest.fixture(scope="module")
def fastapi_server():
    yield from _serve("fastapi_app:app")


@pytest.fixture(scope="module")
def django_server():
    yield from _serve("django_site.asgi:application", env={"DJANGO_SETTINGS_MODULE": "django_site.settings"})


@pytest.fixture(scope="module")
def quart_server():
    yield from _serve("quart_app:app")


@pytest.fixture(scope="module")
def litestar_server():
    yield from _serve("litestar_app:app")


@pytest.fixture(scope="module")
def falcon_server():
    yield from _serve("falcon_app:app")


def _status(server, path: str) -> int:
    with checks.client(server) as c:
        return c.get(path).status_code


def _redirect(server, path: str) -> tuple[int, str]:
    with checks.client(server) as c:
        r = c.get(path)
    return r.status_code, r.headers.get("location", "")


# --- work with either form of path -------------------------------------------------

def test_starlette_routes_and_url_for(starlette_server):
    base = starlette_server.url
    assert checks.get_json(starlette_server, "/items/3") == {"item_id": 3, "q": None}
    where = checks.get_json(starlette_server, "/where")
    assert where["root_path"] == ROOT
    assert where["base_url"] == f"{base}{ROOT}/"
    assert where["url_for"] == f"{base}{ROOT}/items/7"


def test_fastapi_routes_url_for_and_docs(fastapi_server):
    base = fastapi_server.url
    assert checks.get_json(fastapi_server, "/items/3")["item_id"] == 3
    assert checks.get_json(fastapi_server, "/where")["url_for"] == f"{base}{ROOT}/items/7"
    # The docs page points the browser at the schema under the prefix.
    with checks.client(fastapi_server) as c:
        r = c.get("/docs")
    assert r.status_code == 200
    assert f"'{ROOT}/openapi.json'" in r.text
    assert checks.get_json(fastapi_server, "/openapi.json")["servers"] == [{"url": ROOT}]


def test_django_routes_and_reverse(django_server):
    assert checks.get_json(django_server, "/items/3")["item_id"] == 3
    where = checks.get_json(django_server, "/where")
    assert (where["script_name"], where["path_info"], where["reverse"]) == (ROOT, "/where", f"{ROOT}/items/7")


def test_litestar_routes_urls_and_url_for(litestar_server):
    """Litestar strips root_path from path when it is there and builds URLs from
    root_path + its own path: it works with either form."""
    base = litestar_server.url
    assert checks.get_json(litestar_server, "/items/3") == {"item_id": 3, "q": None}
    where = checks.get_json(litestar_server, "/where")
    assert (where["url"], where["url_for"]) == (f"{base}{ROOT}/where", f"{base}{ROOT}/items/7")


def test_falcon_routes_on_the_full_path(falcon_server):
    """Falcon routes on `path` as given, which now starts with root_path (as under uvicorn
    0.54): routes without the prefix do not match, so a Falcon app behind --root-path
    declares its routes with it."""
    assert _status(falcon_server, "/items/3") == 404


# --- need path to include root_path (the ASGI spec's form) ----------------------------------------------------

def test_starlette_request_url_has_the_prefix(starlette_server):
    where = checks.get_json(starlette_server, "/where")
    assert where["url"] == f"{starlette_server.url}{ROOT}/where"


def test_starlette_mount_routes_below_root_path(starlette_server):
    """Mount gives its routes root_path + mount path and matches path against it."""
    assert checks.get_json(starlette_server, "/sub/hello") == {
        "sub": "hello", "url_for": f"{starlette_server.url}{ROOT}/sub/hello"}


def test_starlette_slash_redirect_keeps_the_prefix(starlette_server):
    assert _redirect(starlette_server, "/slash") == (307, f"{starlette_server.url}{ROOT}/slash/")


def test_starlette_prefix_lookalike_is_not_stripped(starlette_server):
    """`/api/items/3` reached narwhal, so the client asked for `/api/api/items/3`: no such
    route. With path lacking root_path, Starlette cannot tell and strips `/api` again."""
    assert _status(starlette_server, f"{ROOT}/items/3") == 404


def test_fastapi_mounted_app_routes_below_root_path(fastapi_server):
    assert checks.get_json(fastapi_server, "/sub/hello") == {"sub": "hello", "root_path": f"{ROOT}/sub"}


def test_fastapi_request_url_has_the_prefix(fastapi_server):
    assert checks.get_json(fastapi_server, "/where")["url"] == f"{fastapi_server.url}{ROOT}/where"


def test_django_request_path_and_absolute_uri_have_the_prefix(django_server):
    """Django 5 takes request.path from scope['path'] and PATH_INFO from it minus root_path."""
    where = checks.get_json(django_server, "/where")
    assert (where["request_path"], where["url"]) == (f"{ROOT}/where", f"{django_server.url}{ROOT}/where")


def test_django_append_slash_redirect_keeps_the_prefix(django_server):
    assert _redirect(django_server, "/slash") == (301, f"{ROOT}/slash/")


def test_litestar_prefix_lookalike_is_not_stripped(litestar_server):
    """Litestar cuts path at the first occurrence of root_path, wherever it is."""
    assert _status(litestar_server, f"{ROOT}/items/3") == 404


def test_quart_routes_below_root_path(quart_server):
    """Quart 0.22 answers 404 for every path that does not start with root_path."""
    assert checks.get_json(quart_server, "/items/3") == {"item_id": 3, "q": None}
    where = checks.get_json(quart_server, "/where")
    assert (where["url"], where["url_for"]) == (f"{quart_server.url}{ROOT}/where",
                                                f"{quart_server.url}{ROOT}/items/7")
