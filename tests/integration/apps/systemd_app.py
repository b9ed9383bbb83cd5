"""For the systemd tests: the lifespan startup waits for the file named by
SYSTEMD_APP_GATE (when set), so a test can hold the server before it is ready;
`GET /block?gate=PATH` blocks the event loop (time.sleep, never awaiting) until that
file exists; any other path answers with the worker's PID."""

import os
import sys
import time
from urllib.parse import parse_qs

GIVE_UP = 60.0


def _log(msg: str) -> None:
    print(f"systemd_app: {msg}", file=sys.stderr, flush=True)


def _blocking_wait(path: str) -> None:
    deadline = time.monotonic() + GIVE_UP
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                gate = os.environ.get("SYSTEMD_APP_GATE")
                if gate:
                    import asyncio

                    _log("startup waiting")
                    while not os.path.exists(gate):
                        await asyncio.sleep(0.01)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = str(os.getpid()).encode()
    if scope["path"] == "/block":
        gate = parse_qs(scope["query_string"].decode())["gate"][0]
        _log("loop blocked")
        _blocking_wait(gate)
        _log("loop released")
        body = b"released"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
