"""Apps for test_ws_handshake.py, imported as `ws_handshake_apps:app`: one route per
way an app can answer (or fail to answer) a WebSocket handshake, dispatched on the
path. Every failure raises out of the app, so the server's log shows it; apps that
return a value return a marker the test looks for in the log."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, MutableMapping

from app_util import lifespan

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

START = "websocket.http.response.start"
BODY = "websocket.http.response.body"


async def accept_echo(receive: Receive, send: Send) -> None:
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": message.get("text") or ""})


async def deny(send: Send, status: int, headers: list[tuple[bytes, bytes]], *bodies: bytes) -> None:
    await send({"type": START, "status": status, "headers": headers})
    for i, body in enumerate(bodies):
        await send({"type": BODY, "body": body, "more_body": i < len(bodies) - 1})


async def route(path: str, receive: Receive, send: Send) -> Any:
    if path == "/accept":
        return await accept_echo(receive, send)
    if path == "/deny-length-twice":  # the same value twice: one header on the wire
        return await deny(send, 403, [(b"content-length", b"4"), (b"Content-Length", b"4")], b"nope")
    if path == "/deny-length-conflict":
        return await deny(send, 403, [(b"content-length", b"4"), (b"content-length", b"5")], b"nope")
    if path == "/deny-length-short":  # declares more than it sends
        return await deny(send, 403, [(b"content-length", b"10")], b"nope")
    if path == "/deny-length-long":
        return await deny(send, 403, [(b"content-length", b"2")], b"no", b"pe")
    if path == "/deny-status-700":
        return await deny(send, 700, [], b"nope")
    if path == "/deny-start-twice":
        await send({"type": START, "status": 403, "headers": []})
        await send({"type": START, "status": 401, "headers": []})
        return None
    if path == "/deny-then-accept":
        await send({"type": START, "status": 403, "headers": []})
        await send({"type": "websocket.accept"})
        return None
    if path == "/deny-start-only":  # start, then return without a body
        await send({"type": START, "status": 403, "headers": [(b"x-denied", b"start-only")]})
        return None
    if path == "/deny-part-then-return":  # one part with more_body, then return
        await send({"type": START, "status": 401, "headers": []})
        await send({"type": BODY, "body": b"partial", "more_body": True})
        return None
    if path == "/return-value":  # closes properly, then returns something
        await send({"type": "websocket.close"})
        return "ws-marker-41"
    if path == "/return-before":  # neither accept nor close
        return None
    raise LookupError(f"no route {path}")


async def app(scope: Scope, receive: Receive, send: Send) -> Any:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "http":
        headers = [(b"content-type", b"text/plain")]
        if scope["path"] == "/length-twice":
            headers += [(b"content-length", b"2"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        return "http-marker-42" if scope["path"] == "/return-value" else None
    assert (await receive())["type"] == "websocket.connect"
    return await route(scope["path"], receive, send)
