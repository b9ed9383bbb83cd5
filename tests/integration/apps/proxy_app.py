"""The app of the proxy tests, imported as `proxy_app:app`.

HTTP (any path): JSON of the scope's `client`, `server` and `scheme`, and the pid of the
process that served it (two servers behind one balancer are told apart).
WebSocket (any path): accepts, sends the same JSON as a text message, then closes.
"""

from __future__ import annotations

import json
import os
from typing import Any, Awaitable, Callable, MutableMapping

from app_util import lifespan

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def facts(scope: Scope) -> dict[str, Any]:
    client, server = scope.get("client"), scope.get("server")
    return {
        "type": scope["type"],
        "client": list(client) if client else None,
        "server": list(server) if server else None,
        "scheme": scope.get("scheme"),
        "pid": os.getpid(),
    }


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    body = json.dumps(facts(scope))
    if scope["type"] == "websocket":
        if (await receive())["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": body})
        await send({"type": "websocket.close", "code": 1000})
        return
    data = body.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
