"""A raw ASGI app for the http.response.pathsend tests, imported as `pathsend_apps:app`.

The query says what to send: `path` (sent as given, so a test can pass a relative or
missing one), `length=yes` to declare the file's size as Content-Length (`declare=N`
to declare N instead), `alone=yes` to
let the start leave on its own before the file (the response is then chunked), and
`status`. `/extensions` answers the scope's extensions as JSON. What `send` raised, if
anything, is reported to the file named by the `x-report` header (app_util), then
raised again so the server logs it and answers 500.
"""

from __future__ import annotations

import asyncio
import json
import os

from app_util import lifespan, query
from app_util import report_to_header as report


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    assert scope["type"] == "http"
    if scope["path"] == "/extensions":
        body = json.dumps(scope["extensions"]).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    q = query(scope)
    path = q["path"]
    headers = [(b"content-type", b"application/octet-stream")]
    if q.get("length") == "yes":
        headers.append((b"content-length", str(os.stat(path).st_size).encode()))
    elif "declare" in q:
        headers.append((b"content-length", q["declare"].encode()))
    await send({"type": "http.response.start", "status": int(q.get("status", "200")),
                "headers": headers})
    if q.get("alone") == "yes":
        await asyncio.sleep(0)  # the held start is flushed before this task resumes
    try:
        await send({"type": "http.response.pathsend", "path": path})
    except Exception as exc:
        report(scope, {"error": type(exc).__name__, "message": str(exc)})
        raise
    report(scope, {"error": None})
