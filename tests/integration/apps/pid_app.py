"""Answers every request with the PID of the process that served it, so tests can tell
worker processes apart. With PID_APP_START_GATE set, lifespan startup waits until that
file exists, which keeps workers in their start-up for as long as a test needs.
GET /block blocks the event loop for good (a hung worker)."""

import asyncio
import os
import time


def block_the_loop_forever() -> None:
    while True:
        time.sleep(1)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                gate = os.environ.get("PID_APP_START_GATE")
                while gate and not os.path.exists(gate):
                    await asyncio.sleep(0.01)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/block":
        block_the_loop_forever()
    body = str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
