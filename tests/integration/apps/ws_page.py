"""An HTML page whose script talks WebSocket back to the server (for headless Chromium).

GET / returns a page that opens `ws://<host>/ws`, sends "hello from the browser" and,
on the echo, sets `document.title = "echo:" + data`. /ws echoes every text and bytes
message. When /ws receives a message, the app writes what it saw (message, headers)
as JSON to the file named by the environment variable WS_PAGE_REPORT (a side channel
the test reads to double-check that the browser really spoke WebSocket).
"""

from __future__ import annotations

import json
import os

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
            return
        if message.get("text") is not None:
            _report({"text": message["text"], "path": scope["path"], "origin": headers.get("origin"),
                     "user_agent": headers.get("user-agent"), "host": headers.get("host")})
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
