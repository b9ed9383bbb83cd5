"""`GET /sleep?s=X` sleeps X seconds, then answers; markers go to the log."""

import asyncio
import sys
from urllib.parse import parse_qs


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
    _log(f"sleeping {seconds} tag={tag}")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _log(f"cancelled tag={tag}")
        raise
    _log(f"woke tag={tag}")
    body = f"slept {seconds}".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
