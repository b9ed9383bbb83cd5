"""Access lines for the responses narwhal answers itself, without the app.

A request the server refuses (400 malformed, 408 head timeout, 413 body too large, 414
URI too long, 431 header too large, 501 transfer coding, 505 version, 503 load shed,
504 app deadline) is logged like any answered request: one INFO access line with the
client address, the method and target when they were read ("-" when not) and the
status, in text and in --log-format json. A shed request also gets uvicorn's warning
"Exceeded concurrency limit.". With --log-level debug the detail line names the right
reason for the status: a 413 is not "malformed request".

Real binary, raw sockets, the overload_apps test app.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import serving
from rawhttp import TIMESTAMP, RawConnection, request

APP = "overload_apps:router"
GUARD = 20.0  # failure guard for every wait
LIMITS = ("--limit-request-line", "1024", "--limit-request-field-size", "1024",
          "--limit-request-body", "1000", "--timeout-header", "0.5")


@pytest.fixture(scope="module")
def text_server():
    yield from serving(APP, *LIMITS, "--log-level", "debug")


@pytest.fixture(scope="module")
def json_server():
    yield from serving(APP, *LIMITS, "--log-format", "json")


# (name, raw request, status, method and target in the access line)
REFUSED = [
    ("malformed", b"GET /bad-header HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400,
     "GET /bad-header HTTP/1.1"),
    ("header-too-large", b"GET /big-header HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n",
     431, "GET /big-header HTTP/1.1"),
    ("uri-too-long", b"GET /" + b"u" * 2000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "GET - HTTP/1.1"),
    ("body-too-large", b"POST /upload-big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413,
     "POST /upload-big HTTP/1.1"),
    # /read reads the whole body: the 413 comes however the bytes arrive.
    ("chunked-too-large", b"POST /read HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"7d0\r\n" + b"b" * 2000 + b"\r\n0\r\n\r\n", 413, "POST /read HTTP/1.1"),
    ("transfer-coding", b"POST /gz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     "POST /gz HTTP/1.1"),
    ("version", b"GET /v2 HTTP/2.0\r\nHost: x\r\n\r\n", 505, "GET /v2 HTTP/2.0"),
    ("head-timeout", b"GET /slow-head HTTP/1.1\r\nHost: x\r\n", 408, "- - HTTP/1.1"),
]


def refuse(server, raw: bytes, status: int) -> int:
    """Send `raw` on a fresh connection, expect `status`; return the client's port."""
    with RawConnection(server.addr, timeout=GUARD) as conn:
        conn.send(raw)
        resp = conn.read_response()
        assert resp.status == status, f"expected {status}, got {resp.status} {resp.body!r}"
        return conn.local_port


# The registered reason phrases (IANA) the text access line ends with, as uvicorn's does.
REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
           431: "Request Header Fields Too Large", 501: "Not Implemented", 503: "Service Unavailable",
           504: "Gateway Timeout", 505: "HTTP Version Not Supported"}


def reason(status: int) -> str:
    return re.escape(REASONS[status])


def access_text(port: int, request_line: str, status: int) -> str:
    return rf'^{TIMESTAMP}INFO: +127\.0\.0\.1:{port} - "{re.escape(request_line)}" {status} {reason(status)}$'


def wait_json(server, pred, what: str) -> dict:
    """The first JSON record satisfying `pred`; waits for it."""
    def records():
        for line in server.log().splitlines():
            if line.startswith("{"):
                yield json.loads(line)
    deadline = time.monotonic() + GUARD
    while True:
        for rec in records():
            if pred(rec):
                return rec
        if time.monotonic() > deadline:
            raise AssertionError(f"no JSON record {what} within {GUARD}s:\n{server.log()}")
        time.sleep(0.02)  # poll interval


@pytest.mark.parametrize("name,raw,status,line", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_request_gets_an_access_line(text_server, name, raw, status, line):
    port = refuse(text_server, raw, status)
    text_server.wait_for_log(access_text(port, line, status), GUARD)


@pytest.mark.parametrize("name,raw,status,line", REFUSED[:4], ids=[r[0] for r in REFUSED[:4]])
def test_refused_request_access_line_in_json(json_server, name, raw, status, line):
    port = refuse(json_server, raw, status)
    want = f'127.0.0.1:{port} - "{line}" {status}'
    rec = wait_json(json_server, lambda r: r.get("message") == want, f"with message {want!r}")
    assert rec["level"] == "info", rec


def test_413_detail_names_the_body_limit_not_a_malformed_request(text_server):
    # A Content-Length over --limit-request-body is refused while the head is parsed.
    refuse(text_server, b"POST /cl-over HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", 413)
    m = text_server.wait_for_log("^" + TIMESTAMP + r"DEBUG: +413 [^:]*: (.*)$", GUARD)
    assert "malformed" not in m.group(1) and "too large" in m.group(1), m.group(0)


def test_app_deadline_504_gets_an_access_line(narwhal):
    server = narwhal(APP, "--timeout-request", "0.3")
    port = refuse(server, request("GET", "/ignore-disconnect?s=30"), 504)
    server.wait_for_log(access_text(port, "GET /ignore-disconnect?s=30 HTTP/1.1", 504), GUARD)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_shed_request_gets_a_warning_and_an_access_line(narwhal, tmp_path, fmt):
    flags = ("--log-format", "json") if fmt == "json" else ()
    server = narwhal(APP, "--limit-concurrency", "1", "--timeout-queue", "0.2", *flags)
    gate = tmp_path / "gate"
    holder = RawConnection(server.addr, timeout=GUARD)
    holder.send(request("GET", "/hold?tag=a", headers=[("x-gate", str(gate))]))
    server.wait_for_log(r"holding tag=a\b", GUARD)
    port = refuse(server, request("GET", "/hello?tag=b"), 503)
    line = f'127.0.0.1:{port} - "GET /hello?tag=b HTTP/1.1" 503'
    if fmt == "text":
        line += " Service Unavailable"
        server.wait_for_log("^" + TIMESTAMP + r"WARNING: +Exceeded concurrency limit\.$", GUARD)
        server.wait_for_log(rf"^{TIMESTAMP}INFO: +{re.escape(line)}$", GUARD)
    else:
        wait_json(server, lambda r: r.get("level") == "warning"
                  and r.get("message") == "Exceeded concurrency limit.", "with the shed warning")
        wait_json(server, lambda r: r.get("message") == line, f"with message {line!r}")
    gate.touch()
    assert holder.read_response().status == 200
    holder.close()
