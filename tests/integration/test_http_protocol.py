"""HTTP/1.1 protocol behaviour, response framing, the ASGI HTTP scope and app errors.

Most tests share one module-scoped server running `raw_apps:router` (the first
path segment picks the app); tests that need their own flags start a server with
the function-scoped `narwhal` fixture. Every test ends by checking that the server
still answers a normal request.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

import conftest
from conftest import launch
from rawhttp import RawConnection, assert_alive, chunked, exchange, request, wait_for_file


HELLO = b"Hello, world!"
IMF_FIXDATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT")


@pytest.fixture(scope="module")
def srv():
    server = launch("raw_apps:router")
    try:
        yield server
    finally:
        server.stop()
        if server in conftest._STARTED:
            conftest._STARTED.remove(server)


def alive(server) -> None:
    assert_alive(server.addr, "/hello", HELLO)


def scope_of(resp) -> dict:
    assert resp.status == 200, resp
    return json.loads(resp.body)


def open_gate(path: Path, decision: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(decision)
    os.replace(tmp, path)


# --- connection management --------------------------------------------------------

def test_keep_alive_serves_several_requests_on_one_connection(srv):
    with RawConnection(srv.addr) as c:
        ports = []
        for i in range(3):
            c.send(request("GET", f"/scope/{i}"))
            resp = c.read_response()
            assert resp.status == 200
            assert not resp.has_token("connection", "close")
            scope = scope_of(resp)
            assert scope["path"] == f"/scope/{i}"
            ports.append(scope["client"][1])
        # The app saw the same client port each time: one TCP connection served all three.
        assert ports == [c.local_port] * 3
        assert c.recv_some(0.05) is None, "server closed or sent stray bytes on an idle keep-alive connection"
    alive(srv)


def test_http10_without_keep_alive_closes(srv):
    resp = exchange(srv.addr, b"GET /hello HTTP/1.0\r\n\r\n")
    assert resp.status == 200
    assert resp.body == HELLO
    assert resp.closed, "HTTP/1.0 request without keep-alive: connection must close after the response"
    alive(srv)


def test_http10_with_keep_alive_stays_open(srv):
    responses = []
    with RawConnection(srv.addr) as c:
        for _ in range(2):
            c.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = c.read_response()
            assert resp.status == 200
            assert resp.body == HELLO
            assert resp.header("content-length") == str(len(HELLO))
            responses.append(resp)
    # An HTTP/1.0 client only knows the connection persists if the response says so
    # (RFC 9112 9.3: otherwise it must assume the connection closes).
    for resp in responses:
        assert resp.has_token("connection", "keep-alive"), f"no Connection: keep-alive in {resp.raw_head!r}"
    alive(srv)


def test_http10_streaming_response_is_not_chunked(srv):
    """Transfer-Encoding must not be sent to an HTTP/1.0 client (RFC 9112 6.1): the
    streamed body is delimited by closing the connection."""
    resp = exchange(srv.addr, b"GET /stream?n=3 HTTP/1.0\r\n\r\n")
    assert resp.status == 200
    assert resp.header("transfer-encoding") is None
    assert resp.body == b"part0\npart1\npart2\n"
    assert resp.closed
    alive(srv)


def test_connection_close_closes_after_response(srv):
    resp = exchange(srv.addr, request("GET", "/hello", headers=[("Connection", "close")]))
    assert resp.status == 200
    assert resp.body == HELLO
    assert resp.has_token("connection", "close")
    assert resp.closed
    alive(srv)


def test_pipelined_requests_answered_in_order(srv):
    batch = (request("GET", "/hello")
             + request("POST", "/echo", body=b"pipelined body")
             + request("GET", "/scope/third?x=1"))
    with RawConnection(srv.addr) as c:
        c.send(batch)
        r1 = c.read_response("GET")
        r2 = c.read_response("POST")
        r3 = c.read_response("GET")
        assert (r1.status, r1.body) == (200, HELLO)
        assert (r2.status, r2.body) == (200, b"pipelined body")
        assert r2.header("x-method") == "POST"
        s3 = scope_of(r3)
        assert (s3["path"], s3["query_string"]) == ("/scope/third", "x=1")
        assert c.recv_some(0.05) is None
    alive(srv)


def test_requests_after_a_body_read_separately_from_its_head(srv):
    """The body arrives in a later read than the head (forced with Expect: 100-continue,
    so no timing is involved); then a 100 KiB body and two pipelined requests follow on
    the same connection. Each must see its own bytes: parsing goes on while a read is
    pending, and that read must not land on top of the unparsed bytes."""
    big = bytes(range(256)) * 400
    with RawConnection(srv.addr) as c:
        c.send(request("POST", "/echo", headers=[("Expect", "100-continue"),
                                                  ("Content-Length", "10")]))
        interim = c.read_response("POST")
        assert interim.status == 100
        c.send(b"0123456789")
        r1 = c.read_response("POST")
        assert (r1.status, r1.body) == (200, b"0123456789")
        c.send(request("POST", "/echo", body=big) + request("POST", "/echo", body=b"second")
               + request("GET", "/hello"))
        r2, r3, r4 = c.read_response("POST"), c.read_response("POST"), c.read_response("GET")
        assert (r2.status, r2.body) == (200, big)
        assert (r3.status, r3.body) == (200, b"second")
        assert (r4.status, r4.body) == (200, HELLO)
    alive(srv)


def test_keep_alive_timeout_closes_idle_connection(narwhal):
    # 6 s, above the 5 s default, so a lower bound alone shows the flag was applied; the
    # clock starts before the request, so the server's idle timer cannot start earlier.
    server = narwhal("raw_apps:router", "--timeout-keep-alive", "6")
    with RawConnection(server.addr) as c:
        t0 = time.monotonic()
        c.send(request("GET", "/hello"))
        assert c.read_response().body == HELLO
        assert c.wait_closed(timeout=30.0), "idle keep-alive connection not closed within 30 s"
        elapsed = time.monotonic() - t0
    assert elapsed >= 5.95, f"closed after {elapsed:.2f}s, before the 6 s --timeout-keep-alive"
    alive(server)


# --- request bodies -------------------------------------------------------------------

def test_content_length_body_reaches_app(srv):
    body = b"hello \x00\xff world"
    resp = exchange(srv.addr, request("POST", "/echo", body=body), check_closed=False)
    assert resp.status == 200
    assert resp.body == body
    assert resp.header("x-body-length") == str(len(body))
    alive(srv)


def test_chunked_body_reaches_app(srv):
    raw = (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;ext=1\r\nhello\r\n1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n")
    resp = exchange(srv.addr, raw, check_closed=False)
    assert resp.status == 200
    assert resp.body == b"hello 0123456789abcdef"
    alive(srv)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_large_body_arrives_intact_in_several_messages(srv, framing):
    body = os.urandom(4 << 20)  # several default read windows (1 MiB)
    if framing == "chunked":
        parts = [body[i:i + 65536] for i in range(0, len(body), 65536)]
        raw = (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(*parts))
    else:
        raw = request("POST", "/echo", body=body)
    with RawConnection(srv.addr, timeout=15) as c:
        c.send(raw)
        resp = c.read_response("POST")
    assert resp.status == 200
    assert len(resp.body) == len(body)
    assert resp.body == body
    assert int(resp.header("x-chunks")) > 1, "a 4 MiB body should reach the app in several more_body messages"
    alive(srv)


@pytest.mark.parametrize("raw", [
    b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
], ids=["no-body", "content-length-0", "chunked-empty"])
def test_empty_body_is_one_final_message(srv, raw):
    resp = exchange(srv.addr, raw, check_closed=False)
    assert resp.status == 200
    assert resp.body == b""
    assert resp.header("x-chunks") == "1"
    alive(srv)


# --- Expect: 100-continue ---------------------------------------------------------------

def _expect_head(gate: Path, length: int) -> bytes:
    return request("POST", "/expect", headers=[
        ("Expect", "100-continue"), ("Content-Length", str(length)), ("x-gate", str(gate))])


def test_expect_100_continue_sent_when_app_calls_receive(srv, tmp_path):
    gate = tmp_path / "gate"
    body = b"B" * 1000
    with RawConnection(srv.addr) as c:
        c.send(_expect_head(gate, len(body)))
        srv.wait_for_log(re.escape(f"raw_apps: waiting for {gate}"))  # the app has the request
        early = c.recv_some(0.5)  # nothing may come while it has not called receive()
        assert early is None, f"server sent {early!r} before the app called receive()"
        open_gate(gate, "read")
        interim = c.read_response("POST")
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.raw_head
        assert interim.status == 100
        c.send(body)
        final = c.read_response("POST")
        assert final.status == 200
        assert final.body == body
    alive(srv)


def test_expect_100_continue_not_sent_when_app_answers_without_reading(srv, tmp_path):
    gate = tmp_path / "gate"
    with RawConnection(srv.addr) as c:
        c.send(_expect_head(gate, 1000))
        srv.wait_for_log(re.escape(f"raw_apps: waiting for {gate}"))  # the app has the request
        assert c.recv_some(0.5) is None  # nothing may come while it has not called receive()
        open_gate(gate, "reject")
        resp = c.read_response("POST")  # the first response on the wire must be the final one
        assert resp.status == 417, f"expected 417 without a 100 Continue first, got {resp.raw_head!r}"
        assert resp.body == b"rejected"
    alive(srv)


# --- response framing -----------------------------------------------------------------

def test_app_content_length_is_kept_across_several_body_messages(srv):
    resp = exchange(srv.addr, request("GET", "/cl?declared=100&actual=100&pieces=3"), check_closed=False)
    assert resp.status == 200
    assert resp.header_all("content-length") == ["100"]
    assert resp.header("transfer-encoding") is None
    assert len(resp.body) == 100
    alive(srv)


@pytest.mark.parametrize("q", ["n=3", "n=3&empty_middle=1", "n=3&last=1"])
def test_streamed_response_uses_chunked_encoding(srv, q):
    with RawConnection(srv.addr) as c:
        c.send(request("GET", f"/stream?{q}"))
        resp = c.read_response()
        assert resp.status == 200
        assert resp.has_token("transfer-encoding", "chunked")
        assert resp.header("content-length") is None
        assert resp.complete, f"chunked body not terminated: {resp.raw_body!r}"
        assert resp.body == b"part0\npart1\npart2\n"
        assert all(size > 0 for size in resp.chunks), "empty body message produced a zero-size chunk"
        assert resp.raw_body.endswith(b"0\r\n\r\n")
        # the framing is exact: the same connection still parses a next response
        c.send(request("GET", "/hello"))
        assert c.read_response().body == HELLO
    alive(srv)


def test_single_body_response_gets_content_length(srv):
    resp = exchange(srv.addr, request("GET", "/hello"), check_closed=False)
    assert resp.status == 200
    assert resp.header_all("content-length") == [str(len(HELLO))]
    assert resp.header("transfer-encoding") is None
    assert resp.body == HELLO
    alive(srv)


@pytest.mark.parametrize("target,length", [
    ("/hello", str(len(HELLO))),
    ("/cl?declared=10&actual=10", "10"),
    ("/stream?n=3", None),
])
def test_head_has_headers_but_no_body(srv, target, length):
    with RawConnection(srv.addr) as c:
        c.send(request("HEAD", target))
        resp = c.read_response("HEAD")
        assert resp.status == 200
        assert resp.header("content-type") is not None
        if length is not None:
            assert resp.header("content-length") == length
        # no body bytes: the next response on this connection starts right away
        c.send(request("GET", "/hello"))
        nxt = c.read_response()
        assert (nxt.status, nxt.body) == (200, HELLO), "HEAD response carried body bytes"
    alive(srv)


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(srv, status):
    with RawConnection(srv.addr) as c:
        c.send(request("GET", f"/status?status={status}"))
        resp = c.read_response()
        assert resp.status == status
        assert resp.header("transfer-encoding") is None
        if status == 204:
            assert resp.header("content-length") is None, "RFC 9110 8.6: no Content-Length in a 204"
        c.send(request("GET", "/hello"))
        nxt = c.read_response()
        assert (nxt.status, nxt.body) == (200, HELLO), f"{status} response carried body bytes"
    alive(srv)


def test_default_date_and_server_headers(srv):
    resp = exchange(srv.addr, request("GET", "/hello"), check_closed=False)
    assert resp.header_all("server") == ["narwhal"]
    dates = resp.header_all("date")
    assert len(dates) == 1 and IMF_FIXDATE.fullmatch(dates[0]), dates
    alive(srv)


def test_no_date_header(narwhal):
    server = narwhal("raw_apps:router", "--no-date-header")
    resp = exchange(server.addr, request("GET", "/hello"), check_closed=False)
    assert resp.status == 200
    assert resp.header("date") is None
    assert resp.header("server") == "narwhal"
    alive(server)


def test_no_server_header(narwhal):
    server = narwhal("raw_apps:router", "--no-server-header")
    resp = exchange(server.addr, request("GET", "/hello"), check_closed=False)
    assert resp.status == 200
    assert resp.header("server") is None
    assert resp.header("date") is not None
    alive(server)


def test_default_headers_flag(narwhal):
    server = narwhal("raw_apps:router", "--header", "x-a:1", "--header", "x-b:2")
    for target in ("/hello", "/stream?n=1", "/status?status=204"):
        resp = exchange(server.addr, request("GET", target), check_closed=False)
        assert resp.header_all("x-a") == ["1"], (target, resp.headers)
        assert resp.header_all("x-b") == ["2"], (target, resp.headers)
    alive(server)


# --- the HTTP scope (ASGI HTTP connection scope, spec 2.x) ------------------------------

REQUIRED_KEYS = {"type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
                 "query_string", "root_path", "headers", "client", "server"}
OPTIONAL_KEYS = {"state", "extensions"}


def test_scope_keys_and_types(srv):
    with RawConnection(srv.addr) as c:
        c.send(request("GET", "/scope/a?b=c"))
        scope = scope_of(c.read_response())
        port = c.local_port
    assert REQUIRED_KEYS <= set(scope["keys"]) <= REQUIRED_KEYS | OPTIONAL_KEYS, scope["keys"]
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert re.fullmatch(r"2\.\d+", scope["asgi"].get("spec_version", "")), scope["asgi"]
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["root_path"] == ""
    assert scope["client"] == ["127.0.0.1", port]
    assert scope["server"] == ["127.0.0.1", srv.port]
    t = scope["types"]
    assert (t["path"], t["raw_path"], t["query_string"], t["root_path"]) == ("str", "bytes", "bytes", "str")
    assert t["header_items"] == ["bytes,bytes"]
    assert t["client"] in ("tuple", "list") and t["server"] in ("tuple", "list")
    assert "state" in scope["keys"] and t["state"] == "dict", "scope['state'] missing (ASGI lifespan state)"
    alive(srv)


def test_scope_state_carries_lifespan_state(srv):
    scope = scope_of(exchange(srv.addr, request("GET", "/scope"), check_closed=False))
    assert scope["state"] is not None and "raw_apps_started" in scope["state"], scope["state"]
    alive(srv)


def test_scope_http10(srv):
    scope = scope_of(exchange(srv.addr, b"GET /scope HTTP/1.0\r\n\r\n"))
    assert scope["http_version"] == "1.0"
    alive(srv)


def test_scope_path_decoding(srv):
    target = "/scope/caf%C3%A9/%FF/a%2Fb/a+b/%7e?q=%20a&x=%FF"
    scope = scope_of(exchange(srv.addr, request("GET", target), check_closed=False))
    assert scope["path"] == "/scope/café/\ufffd/a/b/a+b/~"
    assert scope["raw_path"] == "/scope/caf%C3%A9/%FF/a%2Fb/a+b/%7e"
    assert scope["query_string"] == "q=%20a&x=%FF"
    alive(srv)


@pytest.mark.parametrize("target,path,raw_path,query", [
    ("/scope", "/scope", "/scope", ""),
    ("/scope?", "/scope", "/scope", ""),
    ("/scope?a=1&a=2&b", "/scope", "/scope", "a=1&a=2&b"),
    ("/scope/x?y?z", "/scope/x", "/scope/x", "y?z"),
])
def test_scope_query_string(srv, target, path, raw_path, query):
    scope = scope_of(exchange(srv.addr, request("GET", target), check_closed=False))
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (path, raw_path, query)
    alive(srv)


def test_scope_headers_lowercased_in_order_with_repeats(srv):
    raw = (b"GET /scope HTTP/1.1\r\nHost: example.test\r\nX-Multi: one\r\nUser-Agent: raw\r\n"
           b"x-multi: two\r\nX-CASE: MiXeD\r\nX-Pad:   padded value \t \r\nX-Obs: caf\xe9\r\n"
           b"X-Empty:\r\nX-Request-ID: trace-7\r\n\r\n")
    scope = scope_of(exchange(srv.addr, raw, check_closed=False))
    # A sane X-Request-ID stays where it was; none would have added one (test_request_id.py).
    assert scope["headers"] == [
        ["host", "example.test"],
        ["x-multi", "one"],
        ["user-agent", "raw"],
        ["x-multi", "two"],
        ["x-case", "MiXeD"],
        ["x-pad", "padded value"],
        ["x-obs", "caf\xe9"],
        ["x-empty", ""],
        ["x-request-id", "trace-7"],
    ]
    alive(srv)


def test_scope_root_path(narwhal):
    """--root-path /api: root_path is "/api" and both path and raw_path start with it (the
    ASGI spec's form, as uvicorn >= 0.26 produces): the proxy in front stripped "/api"."""
    server = narwhal("raw_apps:router", "--root-path", "/api")
    scope = scope_of(exchange(server.addr, request("GET", "/scope/x%20y?q=1"), check_closed=False))
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/scope/x y"
    assert scope["raw_path"] == "/api/scope/x%20y"
    assert scope["query_string"] == "q=1"
    alive(server)


# --- app errors ------------------------------------------------------------------------

def test_exception_before_start_gives_500_and_logs_traceback_with_request_line(narwhal):
    # No access log: the request line in the log must come from the error report.
    server = narwhal("raw_apps:router", "--no-access-log")
    token = f"tok{os.getpid()}x{time.monotonic_ns()}"
    resp = exchange(server.addr, request("GET", f"/raise-before?t={token}"), check_closed=False)
    assert resp.status == 500
    assert resp.header_all("connection") == ["close"], resp.headers
    server.wait_for_log(rf"AppBoom: raise_before {token}")
    log = server.log()
    assert "Traceback (most recent call last)" in log, log
    assert re.search(rf"GET /raise-before\?t={token}", log), f"request line not logged:\n{log}"
    alive(server)


@pytest.mark.parametrize("query", ["", "&cl=100"], ids=["chunked", "content-length"])
def test_exception_after_start_closes_without_complete_response(srv, query):
    with RawConnection(srv.addr) as c:
        c.send(request("GET", f"/raise-after?t=x{query}"))
        resp = c.read_response()
        assert resp.status == 200
        assert resp.body == b"partial"
        assert not resp.complete, f"response looks complete: {resp.raw_body!r}"
        assert c.wait_closed(5.0), "connection not closed after a partial response"
    alive(srv)


def test_return_without_response_gives_500(srv):
    resp = exchange(srv.addr, request("GET", "/no-response"), check_closed=False)
    assert resp.status == 500
    alive(srv)


def test_return_after_partial_response_closes(srv):
    with RawConnection(srv.addr) as c:
        c.send(request("GET", "/partial-return"))
        resp = c.read_response()
        assert resp.status == 200
        assert resp.body == b"partial"
        assert not resp.complete
        assert c.wait_closed(5.0)
    alive(srv)


# uvicorn's wording for the RuntimeError that send() raises in the app.
WRONG_ORDER_CASES = {
    "body_first": "Expected ASGI message 'http.response.start', but got 'http.response.body'.",
    "double_start": "Expected ASGI message 'http.response.body', but got 'http.response.start'.",
    "after_complete": "Unexpected ASGI message 'http.response.body' sent, after response already completed.",
    "start_after_complete": "Unexpected ASGI message 'http.response.start' sent, after response already completed.",
    "longer": "Response content longer than Content-Length",
    "longer_split": "Response content longer than Content-Length",
    "shorter": "Response content shorter than Content-Length",
    # The response headers, checked once as they enter (asgi/response_headers.*).
    "header_name": "Invalid HTTP header name.",
    "header_crlf": "Invalid HTTP header value.",
    "bad_length": "Response Content-Length must be a non-negative integer.",
    "two_lengths": "Response has conflicting Content-Length headers.",
}

# What the client sees: "500" (nothing was sent), "complete" (the response finished
# before the bad message), or "failed": nothing on the wire may claim success, so
# either a 500 (if the server had not written the head yet) or a cut-short 200 and a
# closed connection. For "longer", filling up to Content-Length and reporting success
# would hide the truncation from the client.
CLIENT_OUTCOME = {
    "body_first": "500",
    "double_start": "failed",
    "after_complete": "complete",
    "start_after_complete": "complete",
    "longer": "failed",
    "longer_split": "failed",
    "shorter": "failed",
    "header_name": "500",
    "header_crlf": "500",
    "bad_length": "500",
    "two_lengths": "500",
}


@pytest.mark.parametrize("case", list(WRONG_ORDER_CASES))
def test_wrong_message_order_raises_runtime_error_in_app(srv, tmp_path, case):
    report_file = tmp_path / "report.json"
    with RawConnection(srv.addr) as c:
        c.send(request("GET", f"/wrong-order?case={case}", headers=[("x-report", str(report_file))]))
        outcome = CLIENT_OUTCOME[case]
        resp = c.read_response()
        if outcome == "500":
            assert resp.status == 500
        elif outcome == "complete":
            assert (resp.status, resp.body, resp.complete) == (200, b"done", True)
        elif resp.status != 500:
            assert resp.status == 200 and not resp.complete, f"client saw a complete response: {resp}"
            assert c.wait_closed(5.0), "connection not closed after a cut-short response"
        rep = json.loads(wait_for_file(report_file))
    assert rep["exc_type"] == "RuntimeError", rep
    assert rep["message"] == WRONG_ORDER_CASES[case]
    alive(srv)


@pytest.mark.parametrize("read_first", ["0", "1"])
def test_receive_after_response_complete_returns_disconnect(srv, tmp_path, read_first):
    report_file = tmp_path / "report.json"
    with RawConnection(srv.addr) as c:
        c.send(request("GET", f"/receive-after?read_first={read_first}", headers=[("x-report", str(report_file))]))
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"done")
        # the client keeps the connection open: receive() must still say http.disconnect
        rep = json.loads(wait_for_file(report_file))
    assert rep["type"] == "http.disconnect", rep
    alive(srv)
