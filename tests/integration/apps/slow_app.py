"""`GET /sleep?s=X` sleeps X seconds, then answers; markers go to the log.

With `&gate=PATH` it waits for that file to exist instead (giving up after 30 s), so
the test decides when the request finishes rather than a clock."""

import asyncio
import os
import sys
import time
from urllib.parse import parse_qs

GATE_GIVE_UP = 30.0


async def _wait_gate(gate: str) -> None:
    deadline = time.monotonic() + GATE_GIVE_UP
    while not os.path.exists(gate) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def _log(msg: str) -> None:
    print(f"slow_app: {msg}", file=sys.stderr, flush=True)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _log("lifespan shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    query = parse_qs(scope["query_string"].decode())
    seconds = float(query.get("s", ["0"])[0])
    tag = query.get("tag", ["-"])[0]
    gate = query.get("gate", [""])[0]
    _log(f"sleeping {seconds} tag={tag}")
    try:
        if gate:
            await _wait_gate(gate)
        else:
            await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _log(f"cancelled tag={tag}")
        raise
    _log(f"woke tag={tag}")
    body = f"slept {seconds}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
