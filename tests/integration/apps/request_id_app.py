"""The request id as the app sees it, for test_request_id.py.

HTTP: any path answers JSON {"ids": [every x-request-id / x-trace-id value in the scope],
"headers": the scope's header names}; `?own=ID` makes the app send its own x-request-id.
WebSocket: accepts and sends the same JSON as one text message, then closes.
"""

from __future__ import annotations

import json

from app_util import lifespan, query

NAMES = (b"x-request-id", b"x-trace-id")


def view(scope) -> bytes:
    ids = {name.decode(): [bytes(v).decode("latin-1") for k, v in scope["headers"] if bytes(k) == name]
           for name in NAMES}
    return json.dumps({"ids": ids, "headers": [bytes(k).decode("latin-1") for k, _ in scope["headers"]]}).encode()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": view(scope).decode()})
        await send({"type": "websocket.close", "code": 1000})
        return
    headers = [(b"content-type", b"application/json")]
    own = query(scope).get("own")
    if own:
        headers.append((b"x-request-id", own.encode()))
    body = view(scope)
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
