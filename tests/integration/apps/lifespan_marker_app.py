"""Lifespan startup and shutdown each leave a file behind, so a test can tell that they
ran even when the server never served: the paths come from LIFESPAN_MARKERS_DIR."""

import os
from pathlib import Path


def _marker(name: str) -> None:
    Path(os.environ["LIFESPAN_MARKERS_DIR"], name).write_text(str(os.getpid()))


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _marker("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _marker("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})
