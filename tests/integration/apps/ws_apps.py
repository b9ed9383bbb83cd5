"""WebSocket apps for test_websocket.py, imported as `ws_apps:<name>`.

`app` is a raw ASGI 3 app that dispatches on the path (see ROUTES); `starlette_app`
is a Starlette application with a `WebSocketEndpoint` echo and a `websocket_route`
that reads JSON.

Side channel: what the client cannot see (the scope, the text of a RuntimeError
raised by `send`, the `websocket.disconnect` message) is written as JSON to the file
named by the query parameter `report`, atomically (temporary file, then rename).
Apps that must wait for the test without reading the socket wait for the files
named by the query parameters `go1`, `go2` (polled: the test creates them).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Awaitable, Callable, MutableMapping

from app_util import query, write_report

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AppBoom(Exception):
    """The exception the failing apps raise (its name makes log lines unambiguous)."""


# --- helpers -------------------------------------------------------------------

def report(scope: Scope, payload: Any) -> None:
    write_report(query(scope).get("report"), payload)


def jsonable(value: Any) -> Any:
    """Scope values as JSON: bytes become {"bytes": latin-1 text}, tuples become lists."""
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).decode("latin-1")}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def exc_info(exc: BaseException) -> dict[str, Any]:
    import narwhal  # the server's module: ClientDisconnected

    return {
        "exc_type": type(exc).__name__,
        "exc_module": type(exc).__module__,
        "message": str(exc),
        "is_oserror": isinstance(exc, OSError),
        "is_client_disconnected": isinstance(exc, narwhal.ClientDisconnected),
    }


async def wait_for_path(path: str, timeout: float = 10.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not os.path.exists(path):
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            state = scope.get("state")
            if state is not None:
                state["ws_apps_started"] = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


# --- the routes ------------------------------------------------------------------

async def ws_scope(scope, receive, send):
    """Report the scope and the first message, accept, say "hello", wait for the close."""
    first = await receive()
    types = {k: type(v).__name__ for k, v in scope.items()}
    report(scope, {"scope": jsonable(dict(scope)), "types": types, "first": jsonable(first),
                   "has_method": "method" in scope})
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "hello"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def ws_echo(scope, receive, send):
    """Echo text and bytes; after the client closes report the disconnect message, the
    next receive() and what send() raises."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    received: list[Any] = []
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        received.append(jsonable(message))
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
    again = await asyncio.wait_for(receive(), 5)
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except Exception as exc:  # noqa: BLE001 - reported to the test
        send_exc = exc_info(exc)
    else:
        send_exc = None
    report(scope, {"disconnect": jsonable(message), "again": jsonable(again), "send_exc": send_exc,
                   "received": len(received)})


async def ws_subprotocol(scope, receive, send):
    """Accept with the last offered subprotocol and an extra header."""
    await receive()
    report(scope, {"subprotocols": scope.get("subprotocols")})
    await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][-1],
                "headers": [(b"x-accepted-by", b"ws_apps")]})
    await send({"type": "websocket.send", "text": "chose " + scope["subprotocols"][-1]})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def ws_close(scope, receive, send):
    """Accept, send one message, close with ?code= and ?reason=."""
    q = query(scope)
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "before close"})
    await send({"type": "websocket.close", "code": int(q.get("code", "1000")), "reason": q.get("reason", "")})
    report(scope, {"after_close": jsonable(await asyncio.wait_for(receive(), 5))})


async def ws_reject(scope, receive, send):
    """Close before accepting: the client gets HTTP 403."""
    await receive()
    await send({"type": "websocket.close"})
    report(scope, {"closed": True})


async def ws_deny(scope, receive, send):
    """The denial extension: an HTTP response in two body parts instead of the handshake."""
    await receive()
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"x-denied", b"yes")]})
    await send({"type": "websocket.http.response.body", "body": b"denied: ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"no token"})
    report(scope, {"done": True})


async def ws_deny_sized(scope, receive, send):
    """A denial whose headers carry the app's own content-length (as Starlette's Response)."""
    await receive()
    await send({"type": "websocket.http.response.start", "status": 403,
                "headers": [(b"content-length", b"6"), (b"content-type", b"text/plain")]})
    await send({"type": "websocket.http.response.body", "body": b"sized!"})


async def ws_send_before_accept(scope, receive, send):
    """websocket.send before accept raises RuntimeError; then close (-> 403)."""
    await receive()
    try:
        await send({"type": "websocket.send", "text": "too early"})
    except RuntimeError as exc:
        result = {"exc_type": type(exc).__name__, "message": str(exc)}
    else:
        result = {"exc_type": None, "message": None}
    report(scope, result)
    await send({"type": "websocket.close"})


async def ws_accept_twice(scope, receive, send):
    """A second websocket.accept raises RuntimeError; the socket stays usable."""
    await receive()
    await send({"type": "websocket.accept"})
    try:
        await send({"type": "websocket.accept"})
    except RuntimeError as exc:
        result = {"exc_type": type(exc).__name__, "message": str(exc)}
    else:
        result = {"exc_type": None, "message": None}
    report(scope, result)
    await send({"type": "websocket.send", "text": "still open"})
    await send({"type": "websocket.close", "code": 1000})


async def ws_raise_before(scope, receive, send):
    await receive()
    raise AppBoom("ws_raise_before")


async def ws_return_before(scope, receive, send):
    await receive()


async def ws_raise_after(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "about to fail"})
    raise AppBoom("ws_raise_after")


async def ws_return_open(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "returning"})


async def ws_gated(scope, receive, send):
    """Accept, say "ready"; then for go1, go2: wait for the file, receive one message
    and send back "ack:<text>". Reads nothing from the socket while waiting."""
    q = query(scope)
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "ready"})
    for gate in ("go1", "go2"):
        if not await wait_for_path(q[gate]):
            await send({"type": "websocket.close", "code": 4999, "reason": f"no {gate}"})
            return
        message = await receive()
        await send({"type": "websocket.send", "text": f"ack:{message.get('text')}"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def ws_watch(scope, receive, send):
    """Accept, say "ready", then receive until the disconnect and report it."""
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "ready"})
    count = 0
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        count += 1
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
    report(scope, {"disconnect": jsonable(message), "received": count})


async def ws_flood(scope, receive, send):
    """Send 64 KiB messages as fast as send() allows; report how sending ended."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    sent = 0
    outcome: dict[str, Any] = {"exc": None}
    try:
        for _ in range(20000):  # 1.25 GiB at most: far more than any socket buffer
            await send({"type": "websocket.send", "bytes": b"x" * 65536})
            sent += 1
    except Exception as exc:  # noqa: BLE001 - reported to the test
        outcome["exc"] = exc_info(exc)
    outcome["sent"] = sent
    report(scope, outcome)


ROUTES = {
    "/flood": ws_flood,
    "/scope": ws_scope,
    "/echo": ws_echo,
    "/subprotocol": ws_subprotocol,
    "/close": ws_close,
    "/reject": ws_reject,
    "/deny": ws_deny,
    "/deny-sized": ws_deny_sized,
    "/send-before-accept": ws_send_before_accept,
    "/accept-twice": ws_accept_twice,
    "/raise-before": ws_raise_before,
    "/return-before": ws_return_before,
    "/raise-after": ws_raise_after,
    "/return-open": ws_return_open,
    "/gated": ws_gated,
    "/watch": ws_watch,
}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(scope, receive, send)
        return
    if kind == "http":
        body = b"plain http"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})
        return
    path = scope["path"]
    handler = ROUTES.get(path)
    if handler is None and path.startswith("/scope/"):
        handler = ws_scope
    if handler is None:
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        return
    await handler(scope, receive, send)


# --- Starlette ---------------------------------------------------------------------

import warnings  # noqa: E402

from starlette.applications import Starlette  # noqa: E402
from starlette.endpoints import WebSocketEndpoint  # noqa: E402
from starlette.routing import WebSocketRoute  # noqa: E402
from starlette.websockets import WebSocket  # noqa: E402


class StarletteEcho(WebSocketEndpoint):
    encoding = "text"

    async def on_connect(self, websocket: WebSocket) -> None:
        await websocket.accept()

    async def on_receive(self, websocket: WebSocket, data: str) -> None:
        await websocket.send_text(f"echo: {data}")

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        write_report(websocket.query_params.get("report"), {"close_code": close_code})


starlette_app = Starlette(routes=[WebSocketRoute("/echo", StarletteEcho)])

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)

    @starlette_app.websocket_route("/json")
    async def starlette_json(websocket: WebSocket) -> None:
        await websocket.accept()
        data = await websocket.receive_json()
        await websocket.send_json({"got": data, "sum": sum(data["nums"]), "path": websocket.url.path})
        await websocket.close(code=1000)
