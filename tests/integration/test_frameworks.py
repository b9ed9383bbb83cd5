"""Real frameworks (Starlette, FastAPI, Django, Quart, Falcon) served by the real
narwhal binary and driven by real clients (httpx, curl)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import shutil
import signal
import subprocess
import warnings

import httpx
import pytest

from conftest import APPS_DIR, launch

TIMEOUT = httpx.Timeout(15.0)


def _payload(size: int, seed: int) -> bytes:
    """Random bytes salted with sequences that trip naive multipart parsers."""
    rnd = random.Random(seed)
    tricky = b"\r\n--boundary\r\n\r\n--\r\n\x00\xff" * 8
    raw = rnd.randbytes(size)
    return raw[: size // 2] + tricky + raw[size // 2 :] + bytes(range(256))


@pytest.fixture(scope="module")
def server_factory():
    """Module-scoped servers (framework imports are slow); stopped by PID at the end."""
    started = []

    def start(app: str, *args: str, **kw):
        server = launch(app, *args, **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(signal.SIGTERM, timeout=5)


def _client(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT)


def _in_process(module: str):
    """Starlette's TestClient calling an app of apps/ in this process, without narwhal:
    the reference for answers whose exact bytes belong to the installed framework."""
    from starlette.testclient import TestClient

    spec = importlib.util.spec_from_file_location(module, APPS_DIR / f"{module}.py")
    mod = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        # fastapi_app keeps @app.on_event (Debian 12's FastAPI 0.92 has no lifespan=),
        # which FastAPI >= 0.93 deprecates at import; the served copy is what is tested.
        warnings.simplefilter("ignore", DeprecationWarning)
        spec.loader.exec_module(mod)
    return TestClient(mod.app)


# --------------------------------------------------------------------------- Starlette

@pytest.fixture(scope="module")
def starlette_server(server_factory):
    return server_factory("starlette_app:app")


def test_starlette_plain_text(starlette_server):
    with _client(starlette_server) as c:
        r = c.get("/text")
    assert r.status_code == 200
    assert r.text == "hello from starlette"
    assert r.headers["content-type"].startswith("text/plain")
    assert r.headers["content-length"] == str(len("hello from starlette"))


def test_starlette_json(starlette_server):
    with _client(starlette_server) as c:
        r = c.get("/json", params={"a": "1", "b": "two words"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"framework": "starlette", "ok": True, "query": {"a": "1", "b": "two words"}}


def test_starlette_streaming(starlette_server):
    with _client(starlette_server) as c:
        with c.stream("GET", "/stream", params={"n": "50"}) as r:
            assert r.status_code == 200
            assert r.headers.get("transfer-encoding") == "chunked"
            body = b"".join(r.iter_bytes())
    assert body == b"".join(f"chunk-{i}\n".encode() for i in range(50))


def test_starlette_form_upload_byte_exact(starlette_server):
    data = _payload(300_000, seed=1)
    files = {"file": ("blob.bin", data, "application/x-narwhal-test")}
    with _client(starlette_server) as c:
        r = c.post("/upload", files=files, data={"note": "a note"})
    assert r.status_code == 200, r.text[:500]
    assert r.headers["x-size"] == str(len(data))
    assert r.headers["x-filename"] == "blob.bin"
    assert r.headers["x-file-content-type"] == "application/x-narwhal-test"
    assert r.headers["x-note"] == "a note"
    assert len(r.content) == len(data)
    assert r.content == data


def test_starlette_path_params(starlette_server):
    with _client(starlette_server) as c:
        r = c.get("/items/42")
        assert r.status_code == 200
        assert r.json() == {"item_id": 42}
        assert c.get("/items/not-a-number").status_code == 404
        r = c.get("/users/J%C3%BCrgen%20X")
    assert r.status_code == 200
    assert r.json() == {"name": "Jürgen X", "raw_path": "/users/J%C3%BCrgen%20X"}


def test_starlette_request_state_from_lifespan(starlette_server):
    with _client(starlette_server) as c:
        r = c.get("/state")
    assert r.status_code == 200, r.text[:500]
    assert r.json() == {"greeting": "hello from lifespan", "started": True}
    assert "Application startup complete." in starlette_server.log()


def test_starlette_upload_with_curl(starlette_server, tmp_path):
    """The same upload through curl: another client's multipart and chunk framing."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    data = _payload(200_000, seed=2)
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    out = tmp_path / "echo.bin"
    head = tmp_path / "head.txt"
    proc = subprocess.run(
        [curl, "-sS", "--max-time", "20", "-D", str(head), "-o", str(out),
         "-F", f"file=@{src};type=application/octet-stream", "-F", "note=via curl",
         f"{starlette_server.url}/upload"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    status_line = head.read_text().splitlines()[0]
    assert status_line.startswith("HTTP/1.1 200"), status_line
    headers = head.read_text().lower()
    assert "x-filename: upload.bin" in headers
    assert "x-note: via curl" in headers
    assert out.read_bytes() == data


# ---------------------------------------------------------------------------- FastAPI

@pytest.fixture(scope="module")
def fastapi_server(server_factory):
    return server_factory("fastapi_app:app")


def test_fastapi_json_query_params(fastapi_server):
    with _client(fastapi_server) as c:
        r = c.get("/items", params={"q": "narwhal", "limit": "3"})
        assert r.status_code == 200
        assert r.json() == {"q": "narwhal", "limit": 3, "model": "loaded-at-startup"}
        r = c.get("/items")
    assert r.json() == {"q": None, "limit": 10, "model": "loaded-at-startup"}


def test_fastapi_post_model(fastapi_server):
    with _client(fastapi_server) as c:
        r = c.post("/items", json={"name": "tusk", "price": 2.5, "tags": ["a", "b"]})
    assert r.status_code == 200
    assert r.json() == {"name": "tusk", "price": 2.5, "tags": ["a", "b"], "total": 5.0}


def test_fastapi_validation_error_422(fastapi_server):
    with _client(fastapi_server) as c:
        r = c.post("/items", json={"price": "not-a-number"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    # Which fields failed is the app's; the wording and the keys of each entry are the
    # pydantic version's (1.x: "field required"; 2.x: "Field required" plus "input").
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "name"], ["body", "price"]]
    # The body is FastAPI's own answer, passed through unchanged.
    direct = _in_process("fastapi_app").post("/items", json={"price": "not-a-number"})
    assert (r.status_code, r.content) == (direct.status_code, direct.content)


def test_fastapi_validation_error_query_and_bad_json(fastapi_server):
    with _client(fastapi_server) as c:
        r = c.get("/items", params={"limit": "many"})
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"] == ["query", "limit"]
        r = c.post("/items", content=b'{"name": "tusk", ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, list) and detail[0]["loc"][0] == "body"


def test_fastapi_requests_after_post_on_one_connection(fastapi_server):
    """Clients reuse connections: a GET after a POST on the same keep-alive connection
    is answered (not left hanging until the keep-alive timeout closes it)."""
    with _client(fastapi_server) as c:
        for i in range(3):
            r = c.post("/items", json={"name": f"n{i}", "price": i})
            assert r.status_code == 200
            assert r.json()["name"] == f"n{i}"
            r = c.get("/items", params={"q": str(i)})
            assert r.status_code == 200
            assert r.json()["q"] == str(i)


def test_fastapi_streaming(fastapi_server):
    with _client(fastapi_server) as c:
        with c.stream("GET", "/stream", params={"n": "20"}) as r:
            assert r.status_code == 200
            body = b"".join(r.iter_bytes())
    assert body == b"".join(f"line {i}\n".encode() for i in range(20))


def test_fastapi_upload_file(fastapi_server):
    data = _payload(150_000, seed=3)
    with _client(fastapi_server) as c:
        r = c.post("/upload", files={"file": ("data.bin", data, "application/octet-stream")},
                   data={"note": "fastapi upload"})
    assert r.status_code == 200, r.text[:500]
    assert r.json() == {
        "filename": "data.bin",
        "content_type": "application/octet-stream",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": "fastapi upload",
    }


def test_fastapi_openapi_and_404(fastapi_server):
    with _client(fastapi_server) as c:
        r = c.get("/openapi.json")
        assert r.status_code == 200
        assert "/items" in r.json()["paths"]
        r = c.get("/nowhere")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


# ----------------------------------------------------------------------------- Django

@pytest.fixture(scope="module")
def django_server(server_factory):
    return server_factory("django_project.asgi:application",
                          env={"DJANGO_SETTINGS_MODULE": "django_project.settings"})


def test_django_get_text(django_server):
    with _client(django_server) as c:
        r = c.get("/hello")
    assert r.status_code == 200
    assert r.text == "hello from django"


def test_django_get_json(django_server):
    with _client(django_server) as c:
        r = c.get("/info", params={"x": "1", "y": "é"})
        assert r.status_code == 200
        assert r.json() == {"framework": "django", "method": "GET", "path": "/info",
                            "query": {"x": "1", "y": "é"}}
        r = c.get("/numbers/21")
    assert r.status_code == 200
    assert r.json() == {"n": 21, "double": 42}


def test_django_post_form(django_server):
    with _client(django_server) as c:
        r = c.post("/echo", data={"name": "narwhal", "tusks": "1"})
    assert r.status_code == 200, r.text[:500]
    body = r.json()
    assert body["content_type"].startswith("application/x-www-form-urlencoded")
    assert body["form"] == {"name": "narwhal", "tusks": "1"}


def test_django_post_json_body(django_server):
    payload = {"items": list(range(100)), "text": "ünïcode"}
    with _client(django_server) as c:
        r = c.post("/echo", content=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:500]
    assert r.json()["json"] == payload


def test_django_not_found(django_server):
    with _client(django_server) as c:
        r = c.get("/does-not-exist")
    assert r.status_code == 404


# ------------------------------------------------------------------------------ Quart

@pytest.fixture(scope="module")
def quart_server(server_factory):
    return server_factory("quart_app:app")


def test_quart_get(quart_server):
    with _client(quart_server) as c:
        r = c.get("/")
        assert r.status_code == 200
        assert r.text == "hello from quart"
        r = c.get("/json", params={"k": "v"})
    assert r.status_code == 200
    assert r.json() == {"framework": "quart", "args": {"k": "v"}, "started": True}


def test_quart_post_body_and_form(quart_server):
    data = _payload(100_000, seed=4)
    with _client(quart_server) as c:
        r = c.post("/echo", content=data)
        assert r.status_code == 200
        assert r.headers["x-size"] == str(len(data))
        assert r.content == data
        r = c.post("/form", data={"a": "1", "b": "x y"})
    assert r.status_code == 200
    assert r.json() == {"a": "1", "b": "x y"}


# ----------------------------------------------------------------------------- Falcon

@pytest.fixture(scope="module")
def falcon_server(server_factory):
    return server_factory("falcon_app:app")


def test_falcon_get(falcon_server):
    with _client(falcon_server) as c:
        r = c.get("/hello")
        assert r.status_code == 200
        assert r.text == "hello from falcon"
        r = c.get("/things/7", params={"color": "blue"})
    assert r.status_code == 200
    assert r.json() == {"framework": "falcon", "thing_id": 7, "color": "blue"}


def test_falcon_post_media(falcon_server):
    with _client(falcon_server) as c:
        r = c.post("/things/9", json={"size": "large", "n": [1, 2, 3]})
        assert r.status_code == 201
        assert r.json() == {"thing_id": 9, "received": {"size": "large", "n": [1, 2, 3]}}
        r = c.get("/missing")
    assert r.status_code == 404
