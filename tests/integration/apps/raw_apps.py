"""Raw ASGI 3 apps for the HTTP protocol tests, imported as `raw_apps:<name>`.

Every app handles the lifespan protocol (and stores `raw_apps_started` in the
lifespan state when the server provides one), so they run the same under
`--lifespan on|auto|off`.

Side channel: apps that must report something the client cannot see in the
response (the text of a RuntimeError raised by `send`, what `receive()` returned
after the response) write a JSON report to the file named by the request header
`x-report`, atomically (write a temporary file, then rename). The test names a
fresh path per request, so reports work across workers, interpreters and
connections and need no shared state in the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any, Awaitable, Callable, MutableMapping

from app_util import header, query
from app_util import report_to_header as report

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AppBoom(Exception):
    """The exception the failing apps raise (its name makes log lines unambiguous)."""


# --- helpers -------------------------------------------------------------------

async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            state = scope.get("state")
            if state is not None:
                state["raw_apps_started"] = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def http_app(handler: ASGIApp) -> ASGIApp:
    """Wrap an HTTP handler: answer lifespan, refuse WebSocket, call it for HTTP."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(scope, receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})
        else:
            await handler(scope, receive, send)

    app.__name__ = handler.__name__
    app.__qualname__ = handler.__qualname__
    app.__doc__ = handler.__doc__
    return app


async def read_body(receive: Receive) -> tuple[bytes, int, bool]:
    """(body, number of http.request messages, disconnected)."""
    parts: list[bytes] = []
    count = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(parts), count, True
        count += 1
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts), count, False


async def respond(send: Send, status: int, body: bytes = b"",
                  headers: list[tuple[bytes, bytes]] | None = None,
                  content_type: bytes = b"text/plain; charset=utf-8") -> None:
    """Start plus one body message; the app sets no Content-Length."""
    hdrs = [(b"content-type", content_type)] + list(headers or [])
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


# --- apps ------------------------------------------------------------------------

@http_app
async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    """200 "Hello, world!" in one body message, no Content-Length from the app."""
    await respond(send, 200, b"Hello, world!")


@http_app
async def echo_body(scope: Scope, receive: Receive, send: Send) -> None:
    """Echo the whole request body; x-chunks = number of http.request messages received."""
    body, count, disconnected = await read_body(receive)
    if disconnected:
        return
    await respond(send, 200, body, headers=[
        (b"x-chunks", str(count).encode()),
        (b"x-body-length", str(len(body)).encode()),
        (b"x-method", scope["method"].encode()),
    ], content_type=b"application/octet-stream")


def _latin1(value: Any) -> Any:
    return bytes(value).decode("latin-1") if isinstance(value, (bytes, bytearray)) else value


@http_app
async def scope_dump(scope: Scope, receive: Receive, send: Send) -> None:
    """The request scope as JSON (bytes decoded as latin-1), plus the Python types."""
    await read_body(receive)
    state = scope.get("state")
    extensions = scope.get("extensions")
    dump = {
        "keys": sorted(scope.keys()),
        "type": scope.get("type"),
        "asgi": dict(scope.get("asgi", {})),
        "http_version": scope.get("http_version"),
        "method": scope.get("method"),
        "scheme": scope.get("scheme"),
        "path": scope.get("path"),
        "raw_path": _latin1(scope.get("raw_path")),
        "query_string": _latin1(scope.get("query_string")),
        "root_path": scope.get("root_path"),
        "headers": [[_latin1(k), _latin1(v)] for k, v in scope.get("headers", [])],
        "client": list(scope["client"]) if scope.get("client") is not None else None,
        "server": list(scope["server"]) if scope.get("server") is not None else None,
        "state": sorted(state.keys()) if state is not None else None,
        "extensions": sorted(extensions.keys()) if extensions is not None else None,
        "types": {
            "path": type(scope.get("path")).__name__,
            "raw_path": type(scope.get("raw_path")).__name__,
            "query_string": type(scope.get("query_string")).__name__,
            "root_path": type(scope.get("root_path")).__name__,
            "header_items": sorted({f"{type(k).__name__},{type(v).__name__}" for k, v in scope.get("headers", [])}),
            "client": type(scope.get("client")).__name__,
            "server": type(scope.get("server")).__name__,
            "state": type(state).__name__,
        },
    }
    await respond(send, 200, json.dumps(dump).encode(), content_type=b"application/json")


@http_app
async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
    """?n=N parts b"part<i>\\n", each its own more_body message, then an empty last one.

    ?empty_middle=1 also sends an empty body message with more_body=True between parts
    (must not end a chunked response); ?last=1 sends the last part with more_body=False.
    """
    q = query(scope)
    n = int(q.get("n", "3"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    for i in range(n):
        final = q.get("last") == "1" and i == n - 1
        await send({"type": "http.response.body", "body": b"part%d\n" % i, "more_body": not final})
        if q.get("empty_middle") == "1" and not final:
            await send({"type": "http.response.body", "body": b"", "more_body": True})
    if q.get("last") != "1" or n == 0:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@http_app
async def content_length_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Declare Content-Length ?declared=N, send ?actual=M bytes in ?pieces=K messages.

    A RuntimeError from send (shorter/longer than Content-Length) is reported through
    `x-report` and re-raised.
    """
    q = query(scope)
    declared = int(q.get("declared", "10"))
    actual = int(q.get("actual", str(declared)))
    pieces = max(1, int(q.get("pieces", "1")))
    data = bytes(ord("a") + i % 26 for i in range(actual))
    step = -(-actual // pieces) if actual else 0
    split = [data[i * step:(i + 1) * step] for i in range(pieces)]
    try:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(declared).encode())]})
        for i, part in enumerate(split):
            await send({"type": "http.response.body", "body": part, "more_body": i < pieces - 1})
    except RuntimeError as exc:
        report(scope, {"exc_type": type(exc).__name__, "message": str(exc)})
        raise
    report(scope, {"exc_type": None, "message": None})


@http_app
async def status_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Respond with ?status=N (e.g. 204, 304) and an empty body."""
    status = int(query(scope).get("status", "204"))
    headers = [(b"etag", b'"v1"')] if status == 304 else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


@http_app
async def raise_before(scope: Scope, receive: Receive, send: Send) -> None:
    """Raise before starting the response (expect 500); ?t=<token> goes in the message."""
    raise AppBoom(f"raise_before {query(scope).get('t', '')}")


@http_app
async def raise_after(scope: Scope, receive: Receive, send: Send) -> None:
    """Start, send a partial body, then raise. ?cl=N declares a Content-Length."""
    q = query(scope)
    headers = [(b"content-type", b"text/plain")]
    if "cl" in q:
        headers.append((b"content-length", q["cl"].encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise AppBoom(f"raise_after {q.get('t', '')}")


@http_app
async def no_response(scope: Scope, receive: Receive, send: Send) -> None:
    """Return without sending anything (expect 500)."""
    return None


@http_app
async def partial_return(scope: Scope, receive: Receive, send: Send) -> None:
    """Start, send a body with more_body=True, return (expect the connection closed)."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})


@http_app
async def wrong_order(scope: Scope, receive: Receive, send: Send) -> None:
    """Send messages in a wrong order (?case=body_first|double_start|after_complete|
    start_after_complete|longer|longer_split|shorter|header_name|header_crlf|bad_length|
    two_lengths).

    The RuntimeError the server raises in `send` is reported through `x-report`
    (exc_type, message, step = index of the send that raised), then re-raised.
    """
    case = query(scope).get("case", "")
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
    body = {"type": "http.response.body", "body": b"done"}
    cl5 = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    cl10 = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
    plans: dict[str, list[Message]] = {
        "body_first": [body],
        "double_start": [start, start],
        "after_complete": [start, body, {"type": "http.response.body", "body": b"extra"}],
        "start_after_complete": [start, body, start],
        "longer": [cl5, {"type": "http.response.body", "body": b"0123456789"}],
        "longer_split": [cl5, {"type": "http.response.body", "body": b"012", "more_body": True},
                         {"type": "http.response.body", "body": b"345"}],
        "shorter": [cl10, {"type": "http.response.body", "body": b"01234"}],
        "header_name": [{**start, "headers": [(b"bad name", b"x")]}],
        "header_crlf": [{**start, "headers": [(b"x-a", b"1\r\nx-injected: 1")]}],
        "bad_length": [{**start, "headers": [(b"content-length", b"-1")]}],
        "two_lengths": [{**start, "headers": [(b"content-length", b"4"), (b"Content-Length", b"5")]}],
    }
    step = -1
    try:
        for step, message in enumerate(plans[case]):
            await send(message)
    except Exception as exc:  # report whatever the server raised, then let it see it
        report(scope, {"exc_type": type(exc).__name__, "message": str(exc), "step": step})
        raise
    report(scope, {"exc_type": None, "message": None, "step": step})


@http_app
async def receive_after_complete(scope: Scope, receive: Receive, send: Send) -> None:
    """Respond (after reading the body when ?read_first=1), then call receive() and
    report the message type it returned (or "timeout" if it blocked for 5 s)."""
    if query(scope).get("read_first") == "1":
        await read_body(receive)
    await respond(send, 200, b"done")
    try:
        message = await asyncio.wait_for(receive(), 5.0)
        report(scope, {"type": message.get("type")})
    except asyncio.TimeoutError:
        report(scope, {"type": "timeout"})


@http_app
async def expect_gate(scope: Scope, receive: Receive, send: Send) -> None:
    """Wait until the file named by `x-gate` exists, then act on its content:
    "read" -> receive() the whole body and echo it (200); "reject" -> answer 417
    without ever calling receive(). Gives up after 30 s with 504. Logs
    `raw_apps: waiting for <gate>` first, so the test knows the app has the request."""
    gate = header(scope, "x-gate") or ""
    print(f"raw_apps: waiting for {gate}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 30.0
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            await respond(send, 504, b"gate never opened")
            return
        await asyncio.sleep(0.01)
    with open(gate, encoding="utf-8") as f:
        decision = f.read().strip()
    if decision == "read":
        body, count, disconnected = await read_body(receive)
        if not disconnected:
            await respond(send, 200, body, headers=[(b"x-chunks", str(count).encode())])
    else:
        await respond(send, 417, b"rejected")


ROUTES: dict[str, ASGIApp] = {
    "hello": hello,
    "echo": echo_body,
    "scope": scope_dump,
    "stream": streaming,
    "cl": content_length_app,
    "status": status_app,
    "raise-before": raise_before,
    "raise-after": raise_after,
    "no-response": no_response,
    "partial-return": partial_return,
    "wrong-order": wrong_order,
    "receive-after": receive_after_complete,
    "expect": expect_gate,
}


async def router(scope: Scope, receive: Receive, send: Send) -> None:
    """Dispatch on the first path segment (after root_path) to the apps above; else hello."""
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    path = scope.get("path", "/")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    first = path.lstrip("/").split("/", 1)[0]
    await ROUTES.get(first, hello)(scope, receive, send)
