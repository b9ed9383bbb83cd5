"""A raw ASGI probe app.

GET /env?name=A&name=B  -> {"A": os.environ.get("A"), ...}
GET /loop               -> the running event loop's class and module
GET /sys-path           -> sys.path and the interpreter's prefixes
GET /scope              -> JSON-safe parts of the request scope
anything else           -> "env_app <path>"
"""

import asyncio
import json
import os
import sys
from urllib.parse import parse_qs


async def _send_json(send, payload, status=200):
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _scope_view(scope):
    return {
        "type": scope["type"],
        "asgi": scope.get("asgi"),
        "http_version": scope.get("http_version"),
        "method": scope.get("method"),
        "scheme": scope.get("scheme"),
        "path": scope.get("path"),
        "raw_path": scope["raw_path"].decode("latin-1") if scope.get("raw_path") is not None else None,
        "query_string": scope.get("query_string", b"").decode("latin-1"),
        "root_path": scope.get("root_path"),
        "server": list(scope["server"]) if scope.get("server") else None,
        "client": list(scope["client"]) if scope.get("client") else None,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
    }


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    # Route on the path below root_path (--root-path), as frameworks do: scope["path"]
    # starts with it.
    path = scope["path"][len(scope.get("root_path", "")):] or "/"
    query = parse_qs(scope["query_string"].decode())
    if path == "/env":
        await _send_json(send, {name: os.environ.get(name) for name in query.get("name", [])})
    elif path == "/loop":
        loop = asyncio.get_running_loop()
        await _send_json(send, {"module": type(loop).__module__, "class": type(loop).__name__})
    elif path == "/sys-path":
        await _send_json(send, {"sys_path": sys.path, "prefix": sys.prefix, "cwd": os.getcwd()})
    elif path == "/scope":
        await _send_json(send, _scope_view(scope))
    else:
        body = f"env_app {path}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
