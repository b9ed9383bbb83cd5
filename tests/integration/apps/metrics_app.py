"""The app behind the metrics and load-balancer tests, `metrics_app:app`.

HTTP: /status/<code> answers that status with the body "status <code>"; /echo answers
the request body; /hold waits (without blocking the loop) until the file named by the
`x-gate` header exists, logging `metrics_app: holding` first; anything else is 200 "ok".
WebSocket: echoes every message until the client closes.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from app_util import header, lifespan

GATE_GIVE_UP = 30.0


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


async def _websocket(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:
            return


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] == "websocket":
        await _websocket(receive, send)
        return
    path = scope["path"]
    body = await _body(receive)
    if path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        await _respond(send, code, b"status %d" % code)
    elif path == "/echo":
        await _respond(send, 200, body)
    elif path == "/hold":
        print("metrics_app: holding", file=sys.stderr, flush=True)
        gate = header(scope, "x-gate") or ""
        deadline = time.monotonic() + GATE_GIVE_UP
        while not (gate and os.path.exists(gate)) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await _respond(send, 200, b"released")
    else:
        await _respond(send, 200, b"ok")
