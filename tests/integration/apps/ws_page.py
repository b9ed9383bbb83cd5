"""An HTML page whose script talks WebSocket back to the server (for headless Chromium).

GET / returns a page that opens `ws://<host>/ws`, sends "hello from the browser" and,
on the echo, closes the socket with 1000. Once the socket is closed (or failed), the
page POSTs what it saw to /result as JSON: {"echo": data or null, "close_code",
"was_clean", "errors"}; the app writes that to the file named by the environment
variable WS_PAGE_RESULT. The test waits for that file: the browser says when it is
done, no timer decides it.

/ws echoes every text and bytes message. When /ws receives a text message, the app
writes what it saw (message, headers) as JSON to the file named by WS_PAGE_REPORT (a
side channel that shows the browser really spoke WebSocket to this server).
"""

from __future__ import annotations

import json
import os

from app_util import lifespan, write_report

PAGE = b"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>waiting</title></head>
<body>
<p id="status">waiting</p>
<script>
  const status = (s) => { document.getElementById("status").textContent = s; };
  const seen = { echo: null, close_code: null, was_clean: null, errors: 0 };
  const report = () => fetch("/result", { method: "POST", body: JSON.stringify(seen) });
  const ws = new WebSocket("ws://" + location.host + "/ws");
  ws.onopen = () => { status("open"); ws.send("hello from the browser"); };
  ws.onmessage = (ev) => {
    seen.echo = ev.data;
    document.title = "echo:" + ev.data;
    status("echoed");
    ws.close(1000, "done");
  };
  ws.onerror = () => { seen.errors += 1; status("error"); };
  ws.onclose = (ev) => {
    seen.close_code = ev.code;
    seen.was_clean = ev.wasClean;
    report();
  };
</script>
</body>
</html>
"""


async def read_body(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(send, status: int, ctype: bytes, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "http":
        if scope["path"] == "/" and scope["method"] == "GET":
            await respond(send, 200, b"text/html; charset=utf-8", PAGE)
        elif scope["path"] == "/result" and scope["method"] == "POST":
            body = await read_body(receive)
            try:
                result = json.loads(body)
            except ValueError:
                result = {"unparsable": body.decode("utf-8", "replace")}
            write_report(os.environ.get("WS_PAGE_RESULT"), result)
            await respond(send, 200, b"text/plain", b"thanks")
        else:
            await respond(send, 404, b"text/plain", b"not found")
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
            write_report(os.environ.get("WS_PAGE_REPORT"),
                         {"text": message["text"], "path": scope["path"], "origin": headers.get("origin"),
                          "user_agent": headers.get("user-agent"), "host": headers.get("host")})
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
