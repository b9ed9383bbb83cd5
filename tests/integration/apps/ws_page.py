"""An HTML page whose script talks WebSocket back to the server (for headless Chromium).

GET / returns a page that opens `ws://<host>/ws`, sends "hello from the browser" and,
on the echo, sets `document.title = "echo:" + data` and closes. /ws echoes every text
and bytes message. The page then loads the script /settled, which the app answers only
once the page's WebSocket has closed (or after a failure guard): the page's load event,
after which Chromium's --dump-dom dumps, waits for the exchange, however slow the
machine, instead of a clock. When /ws receives a message, the app writes what it saw (message, headers)
as JSON to the file named by the environment variable WS_PAGE_REPORT (a side channel
the test reads to double-check that the browser really spoke WebSocket).
"""

from __future__ import annotations

import asyncio
import json
import os

SETTLED_GUARD = 30.0  # failure guard: answer /settled anyway, so the test sees the DOM
_closed = asyncio.Event()  # the page's WebSocket has closed

PAGE = b"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>waiting</title></head>
<body>
<p id="status">waiting</p>
<script>
  const status = (s) => { document.getElementById("status").textContent = s; };
  const ws = new WebSocket("ws://" + location.host + "/ws");
  ws.onopen = () => { status("open"); ws.send("hello from the browser"); };
  ws.onmessage = (ev) => { document.title = "echo:" + ev.data; status("echoed"); ws.close(1000, "done"); };
  ws.onerror = () => { status("error"); };
  ws.onclose = (ev) => { if (document.title === "waiting") document.title = "closed:" + ev.code; };
</script>
<script src="/settled"></script>
</body>
</html>
"""


def _report(payload) -> None:
    path = os.environ.get("WS_PAGE_REPORT")
    if not path:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        if scope["path"] == "/":
            status, ctype, body = 200, b"text/html; charset=utf-8", PAGE
        elif scope["path"] == "/settled":
            try:
                await asyncio.wait_for(_closed.wait(), SETTLED_GUARD)
            except asyncio.TimeoutError:
                pass
            status, ctype, body = 200, b"text/javascript", b"/* the WebSocket closed */"
        else:
            status, ctype, body = 404, b"text/plain", b"not found"
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["type"] != "websocket":
        return
    if (await receive())["type"] != "websocket.connect":
        return
    if scope["path"] != "/ws":
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            _closed.set()
            return
        if message.get("text") is not None:
            _report({"text": message["text"], "path": scope["path"], "origin": headers.get("origin"),
                     "user_agent": headers.get("user-agent"), "host": headers.get("host")})
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
