"""Checks that every current-framework test module (test_pypi_*.py) runs against its app
in tests/integration/apps/pypi, through real clients: httpx, curl and the `websockets`
package. Each app follows the same small contract:

  GET  /version           which release of each package it imported, and from where
  GET  /state             what its lifespan start-up stored
  GET  /items/<int:id>?q  a typed path parameter and a query parameter
  GET  /stream?n=N        N chunks "chunk-<i>\\n" (FastAPI: "line <i>\\n"), streamed
  POST /upload            multipart `file` + `note`: the file echoed byte for byte, with
                          x-filename, x-note and x-sha256 headers
  lifespan shutdown       the log line "pypi-app <name>: lifespan shutdown"
"""

from __future__ import annotations

import hashlib
import random
import shutil
import signal
import subprocess

import httpx

from conftest import Server
from venv_util import PYPI_APPS, assert_from_venv, require_venv

TIMEOUT = httpx.Timeout(20.0)


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=TIMEOUT)


def get_json(server: Server, path: str, **kw) -> dict:
    with client(server) as c:
        r = c.get(path, **kw)
    assert r.status_code == 200, r.text[:500]
    return r.json()


def payload(size: int, seed: int) -> bytes:
    """Random bytes salted with sequences that trip naive multipart parsers."""
    rnd = random.Random(seed)
    tricky = b"\r\n--boundary\r\n\r\n--\r\n\x00\xff" * 8
    raw = rnd.randbytes(size)
    return raw[: size // 2] + tricky + raw[size // 2 :] + bytes(range(256))


def check_from_venv(server: Server, *dists: str) -> None:
    """The app imported the pinned release of each of `dists` from the venv."""
    report = get_json(server, "/version")
    by_name = {p["dist"]: p for p in report["packages"]}
    assert set(by_name) == set(dists), report
    for dist in dists:
        assert_from_venv(by_name[dist], dist)


def check_stream(server: Server, n: int = 40, line: str = "chunk-{i}\n") -> None:
    with client(server) as c:
        with c.stream("GET", "/stream", params={"n": str(n)}) as r:
            assert r.status_code == 200
            assert r.headers.get("transfer-encoding") == "chunked", r.headers
            assert "content-length" not in r.headers
            pieces = list(r.iter_raw())
    body = b"".join(pieces)
    assert body == b"".join(line.format(i=i).encode() for i in range(n))


def check_upload(server: Server, size: int = 300_000, seed: int = 1) -> None:
    data = payload(size, seed)
    files = {"file": ("blob.bin", data, "application/x-narwhal-test")}
    with client(server) as c:
        r = c.post("/upload", files=files, data={"note": "a note"})
    assert r.status_code == 200, r.text[:500]
    assert r.headers["x-filename"] == "blob.bin"
    assert r.headers["x-note"] == "a note"
    assert r.headers["x-sha256"] == hashlib.sha256(data).hexdigest()
    assert len(r.content) == len(data)
    assert r.content == data


def check_upload_with_curl(server: Server, tmp_path, size: int = 200_000, seed: int = 2,
                           chunked: bool = True) -> None:
    """The same upload through curl: another client's multipart framing, sent chunked
    unless `chunked` is False."""
    curl = shutil.which("curl")
    assert curl, "curl is installed by deploy/install-deps.sh"
    data = payload(size, seed)
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    out = tmp_path / "echo.bin"
    framing = ["-H", "Transfer-Encoding: chunked"] if chunked else []
    proc = subprocess.run(
        [curl, "-sS", "--fail", "--max-time", "20", *framing, "-o", str(out),
         "-F", f"file=@{src};type=application/octet-stream", "-F", "note=via curl",
         f"{server.url}/upload"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == data


def check_lifespan_shutdown(launch, app: str, name: str, *args: str, **kw) -> None:
    """A server of its own: start-up ran before the port was served, and after SIGTERM
    the app's shutdown handler ran before the process exited with status 0."""
    venv = require_venv()
    server = launch(app, "--venv", str(venv), *args, app_dir=PYPI_APPS, **kw)
    log = server.log()
    assert log.index(f"pypi-app {name}: lifespan startup") < log.index("narwhal running on"), log
    with client(server) as c:
        assert c.get("/state").status_code == 200
    assert server.stop(signal.SIGTERM) == 0, server.log()
    log = server.log()
    assert f"pypi-app {name}: lifespan shutdown" in log, log
    assert (log.index("Shutting down") < log.index(f"pypi-app {name}: lifespan shutdown")
            < log.index("Application shutdown complete.")), log
