"""http.response.pathsend: the app names a file, narwhal sends it with sendfile(2).

The raw app (apps/pathsend_apps.py) sends whatever path the query names; Starlette's
FileResponse from the pinned venv uses the extension by itself when the scope offers it.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

import rawhttp
from conftest import serving
from venv_util import serve_pypi

APP = "pathsend_apps:app"
MIB = 1024 * 1024
TIMEOUT = 30.0  # a failure guard for a loaded machine, never a pace


@pytest.fixture(scope="module")
def server():
    yield from serving(APP)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pathsend")
    one = d / "one-mib.bin"
    one.write_bytes(random.Random(7).randbytes(MIB))
    empty = d / "empty.bin"
    empty.write_bytes(b"")
    return {"1m": one, "empty": empty, "dir": d}


def target(path, **q) -> str:
    return "/file?" + urllib.parse.urlencode({"path": str(path), **q})


def big_file(tmp_path: Path, size: int = 256 * MIB) -> Path:
    """A sparse file far larger than every socket buffer between server and client, so
    a client that stops reading leaves the server mid-file."""
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def slow_reader(server) -> rawhttp.RawConnection:
    conn = rawhttp.RawConnection.__new__(rawhttp.RawConnection)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connect
    sock.settimeout(TIMEOUT)
    sock.connect(server.addr)
    conn.sock, conn.timeout, conn.buf, conn.eof, conn.reset = sock, TIMEOUT, b"", False, False
    return conn


def holds_open(pid: int, path: Path) -> bool:
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:
            pass  # closed meanwhile
    return False


def wait_until(condition, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.02)


def test_scope_offers_the_extension(server):
    r = httpx.get(server.url + "/extensions", timeout=TIMEOUT)
    assert r.json() == {"http.response.pathsend": {}, "narwhal.pubsub": {}}


@pytest.mark.parametrize("length", ["yes", "no"])
def test_1mib_file_byte_exact(server, files, length):
    """With the app's Content-Length and without it (the file's size is used)."""
    r = httpx.get(server.url + target(files["1m"], length=length), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-length"] == str(MIB)
    assert "transfer-encoding" not in r.headers
    assert r.content == files["1m"].read_bytes()


def test_start_sent_alone_makes_the_file_one_chunk(server, files):
    """A start that left before the pathsend (no Content-Length): the file is chunked."""
    with rawhttp.RawConnection(server.addr, TIMEOUT) as conn:
        conn.send(rawhttp.request("GET", target(files["1m"], alone="yes")))
        resp = conn.read_response()
        assert resp.status == 200 and resp.chunked
        assert resp.body == files["1m"].read_bytes()
        conn.send(rawhttp.request("GET", target(files["empty"], alone="yes")))
        resp = conn.read_response()
        assert resp.chunked and resp.body == b""


def test_empty_file(server, files):
    r = httpx.get(server.url + target(files["empty"]), timeout=TIMEOUT)
    assert r.status_code == 200
    assert r.headers["content-length"] == "0"
    assert r.content == b""


def test_curl_byte_exact_and_keep_alive(server, files, tmp_path):
    """curl fetches the 1 MiB file, the empty one and the 1 MiB one again over one
    connection: the second and third transfers open no new connection."""
    outs = [tmp_path / f"out{i}" for i in range(3)]
    args = ["curl", "-sS", "--fail", "-w", "%{num_connects} %{size_download}\\n"]
    for path, out in zip([files["1m"], files["empty"], files["1m"]], outs):
        args += ["-o", str(out), server.url + target(path)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [f"1 {MIB}", "0 0", f"0 {MIB}"]
    assert outs[0].read_bytes() == files["1m"].read_bytes()
    assert outs[1].read_bytes() == b""
    assert outs[2].read_bytes() == files["1m"].read_bytes()


def test_keep_alive_after_a_file(server, files):
    with rawhttp.RawConnection(server.addr, TIMEOUT) as conn:
        for path in (files["1m"], files["empty"], files["1m"]):
            conn.send(rawhttp.request("GET", target(path)))
            resp = conn.read_response()
            assert resp.status == 200
            assert resp.body == path.read_bytes()
        conn.send(rawhttp.request("GET", "/extensions"))
        assert conn.read_response().status == 200


def test_head(server, files):
    """HEAD: the head with the file's length, no body, and the connection goes on."""
    with rawhttp.RawConnection(server.addr, TIMEOUT) as conn:
        conn.send(rawhttp.request("HEAD", target(files["1m"])))
        resp = conn.read_response("HEAD")
        assert resp.status == 200
        assert resp.header("content-length") == str(MIB)
        assert resp.body == b""
        conn.send(rawhttp.request("GET", target(files["1m"])))
        resp = conn.read_response()
        assert resp.body == files["1m"].read_bytes()


@pytest.mark.parametrize("case", ["relative", "missing", "directory", "not_a_directory"])
def test_bad_path_is_the_apps_error(server, files, tmp_path, case):
    """The file is opened in the app's await: a bad path raises there, the server logs
    the app's exception and answers 500 (nothing of the response had left)."""
    path, error, message = {
        "relative": ("some/file.bin", "ValueError",
                     "ASGI 'http.response.pathsend' path must be absolute, got 'some/file.bin'."),
        "missing": (str(files["dir"] / "nope.bin"), "FileNotFoundError",
                    f"[Errno 2] No such file or directory: '{files['dir'] / 'nope.bin'}'"),
        "directory": (str(files["dir"]), "RuntimeError",
                      f"ASGI 'http.response.pathsend' path is not a regular file: '{files['dir']}'."),
        "not_a_directory": (str(files["1m"]) + "/x", "NotADirectoryError",
                            f"[Errno 20] Not a directory: '{files['1m']}/x'"),
    }[case]
    report = tmp_path / "report.json"
    r = httpx.get(server.url + target(path), headers={"x-report": str(report)}, timeout=TIMEOUT)
    assert r.status_code == 500
    assert json.loads(rawhttp.wait_for_file(report)) == {"error": error, "message": message}
    server.wait_for_log(rf"{error}: {__import__('re').escape(message)}")
    rawhttp.assert_alive(server.addr, "/extensions")


@pytest.mark.parametrize("declare, message", [
    (MIB + 1, "Response content shorter than Content-Length"),
    (MIB - 1, "Response content longer than Content-Length"),
])
def test_file_against_a_wrong_content_length(server, files, tmp_path, declare, message):
    report = tmp_path / "report.json"
    r = httpx.get(server.url + target(files["1m"], declare=declare),
                  headers={"x-report": str(report)}, timeout=TIMEOUT)
    assert r.status_code == 500
    assert json.loads(rawhttp.wait_for_file(report)) == {"error": "RuntimeError", "message": message}


def test_file_truncated_while_sending(server, tmp_path):
    """The file shrinks after the head promised its length: the client gets a short body
    and a closed connection, never a hang; the server closes the file and carries on."""
    path = big_file(tmp_path)
    size = path.stat().st_size
    conn = slow_reader(server)
    try:
        conn.send(rawhttp.request("GET", target(path)))
        _, resp = conn.read_head()
        assert resp.header("content-length") == str(size)
        assert conn.read_exact(MIB) == bytes(MIB)
        os.truncate(path, 2 * MIB)
        rest = conn.read_until_close()
        assert MIB + len(rest) < size
    finally:
        conn.close()
    server.wait_for_log("the file ended before its length")
    wait_until(lambda: not holds_open(server.pid, path), "the server closed the file")
    rawhttp.assert_alive(server.addr, "/extensions")


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_disconnect_mid_file(server, tmp_path, how):
    path = big_file(tmp_path)
    conn = slow_reader(server)
    conn.send(rawhttp.request("GET", target(path)))
    conn.read_head()
    assert conn.read_exact(MIB) == bytes(MIB)
    wait_until(lambda: holds_open(server.pid, path), "the server sends the file")
    if how == "reset":
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()
    wait_until(lambda: not holds_open(server.pid, path), "the server closed the file")
    rawhttp.assert_alive(server.addr, "/extensions")


def test_stalled_client_is_dropped_after_timeout_send(narwhal, tmp_path):
    server = narwhal(APP, "--timeout-send", "1")
    path = big_file(tmp_path)
    conn = slow_reader(server)
    try:
        conn.send(rawhttp.request("GET", target(path)))
        conn.read_head()
        # The client reads no more: the server gives up on it and closes the file.
        wait_until(lambda: holds_open(server.pid, path), "the server sends the file")
        wait_until(lambda: not holds_open(server.pid, path), "the stalled send is dropped")
    finally:
        conn.close()
    rawhttp.assert_alive(server.addr, "/extensions")


# --- Starlette's FileResponse (the pinned PyPI release) ----------------------------

@pytest.fixture(scope="module")
def starlette(tmp_path_factory):
    path = tmp_path_factory.mktemp("starlette") / "data.bin"
    path.write_bytes(random.Random(11).randbytes(MIB))
    for server in serve_pypi("starlette_files_app:app", env={"NARWHAL_TEST_FILE": str(path)}):
        server.file = path
        yield server


def sent_types(server, tmp_path, method="GET", headers=None) -> tuple[httpx.Response, list[str]]:
    report = tmp_path / f"sent-{method}-{len(headers or {})}.json"
    r = httpx.request(method, server.url + "/file",
                      headers={"x-report": str(report), **(headers or {})}, timeout=TIMEOUT)
    return r, json.loads(rawhttp.wait_for_file(report))


def test_starlette_file_response_uses_pathsend(starlette, tmp_path):
    data = starlette.file.read_bytes()
    r, types = sent_types(starlette, tmp_path)
    assert types == ["http.response.start", "http.response.pathsend"]
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(data))
    assert r.content == data


def test_starlette_range_request_uses_body_messages(starlette, tmp_path):
    """The pinned Starlette answers a Range itself, with body messages (it never asks
    for part of a file with pathsend)."""
    data = starlette.file.read_bytes()
    r, types = sent_types(starlette, tmp_path, headers={"range": "bytes=1000-1999"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert r.content == data[1000:2000]
    assert "http.response.pathsend" not in types


def test_starlette_head(starlette, tmp_path):
    r, _ = sent_types(starlette, tmp_path, method="HEAD")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(MIB)
    assert r.content == b""
