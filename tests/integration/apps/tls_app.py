"""The app of the TLS tests, imported as `tls_app:app`.

HTTP routes:
* `/info`: JSON of what the scope says about the connection: scheme, the extension
  keys, `extensions["tls"]` (None when absent) and the client address (its port tells
  the test whether two requests came over one connection).
* `/hash`: reads the body as it streams in and answers its length and SHA-256, so a
  large upload is checked without the app holding it.
* `/chunked?n=N&size=S`: N body messages of S bytes each without a Content-Length
  (the server frames them chunked); byte i of the body is i % 251.
WebSocket (any path): accepts, sends the same JSON as `/info`, then echoes every
message until the client closes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Awaitable, Callable, MutableMapping

from app_util import lifespan, query

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def connection_info(scope: Scope) -> dict[str, Any]:
    extensions = scope.get("extensions") or {}
    client = scope.get("client")
    return {
        "type": scope["type"],
        "scheme": scope.get("scheme"),
        "extension_keys": sorted(extensions),
        "tls": extensions.get("tls"),
        "client": list(client) if client else None,
    }


def pattern(length: int) -> bytes:
    return bytes(i % 251 for i in range(length))


async def _json(send: Send, payload: Any, status: int = 200) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _hash(receive: Receive, send: Send) -> None:
    digest, length = hashlib.sha256(), 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        digest.update(chunk)
        length += len(chunk)
        if not message.get("more_body", False):
            break
    await _json(send, {"length": length, "sha256": digest.hexdigest()})


async def _chunked(scope: Scope, send: Send) -> None:
    q = query(scope)
    n, size = int(q.get("n", "8")), int(q.get("size", "1000"))
    body = pattern(n * size)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    for i in range(n):
        await send({"type": "http.response.body", "body": body[i * size:(i + 1) * size], "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(connection_info(scope))})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    kind = scope["type"]
    if kind == "lifespan":
        await lifespan(receive, send)
    elif kind == "websocket":
        await _websocket(scope, receive, send)
    elif scope["path"] == "/hash":
        await _hash(receive, send)
    elif scope["path"] == "/chunked":
        await _chunked(scope, send)
    else:
        # Drain a body (if any) so a keep-alive connection stays usable.
        while (await receive()).get("more_body", False):
            pass
        await _json(send, connection_info(scope))
