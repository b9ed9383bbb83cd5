"""Looks at the server's native request objects from inside an app: the `receive`,
`send` and request-step objects of each request, which are heap types of the
`_narwhal` module and tracked by the cycle collector.

The collector is switched off at start-up, so an object left in a reference cycle
stays alive and `/live` counts it: requests must be freed by reference counting
alone, as they were before the objects were GC-tracked.

Paths: `/live` (JSON count of live Receive/Send/RequestStep objects), `/types` (JSON
facts about this request's objects), `/echo` (the request body back), `/raise`
(raises after reading the body: a 500). WebSocket: accepts, echoes one message, closes.
"""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any, Awaitable, Callable, MutableMapping

import _narwhal  # type: ignore[import-not-found]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

KINDS = ("Receive", "Send", "RequestStep")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            gc.disable()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def live() -> dict[str, int]:
    types = {getattr(_narwhal, k): k for k in KINDS}
    counts = dict.fromkeys(KINDS, 0)
    for obj in gc.get_objects():
        kind = types.get(type(obj))
        if kind:
            counts[kind] += 1
    return counts


def types(receive: Receive, send: Send) -> dict[str, Any]:
    step = asyncio.current_task().get_coro()  # type: ignore[union-attr]
    refused = {}
    for name in (*KINDS, "CancelStep", "Dispatcher"):
        try:
            getattr(_narwhal, name)()
            refused[name] = None
        except TypeError as e:
            refused[name] = str(e)
    return {
        "receive": type(receive) is _narwhal.Receive,
        "send": type(send) is _narwhal.Send,
        "step": type(step) is _narwhal.RequestStep,
        "module": type(receive).__module__,
        "tracked": [gc.is_tracked(receive), gc.is_tracked(send), gc.is_tracked(step)],
        "coroutine_functions": [asyncio.iscoroutinefunction(receive), asyncio.iscoroutinefunction(send)],
        "refused": refused,
    }


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": message.get("text") or ""})
        await send({"type": "websocket.close", "code": 1000})
        return
    path = scope["path"]
    if path == "/raise":
        await read_body(receive)
        raise RuntimeError("native_objects: raised on purpose")
    if path == "/live":
        body = json.dumps(live()).encode()
    elif path == "/types":
        body = json.dumps(types(receive, send)).encode()
    else:
        body = await read_body(receive)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
