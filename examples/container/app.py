"""The app `make image` puts into narwhal's container image (deploy/container/Containerfile).

GET /       -> "Hello from a container!"
GET /about  -> JSON: the Python prefix (the image's virtualenv), the event loop's module
               (uvloop, installed from requirements.txt into that virtualenv), the user id
GET /slow?s=N -> answers after N seconds (shows a graceful stop finishing it)
"""

import asyncio
import json
import os
import sys
from urllib.parse import parse_qs


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    body = b"Hello from a container!\n"
    content_type = b"text/plain; charset=utf-8"
    if path == "/about":
        loop = asyncio.get_running_loop()
        body = json.dumps({"prefix": sys.prefix, "loop": type(loop).__module__,
                           "uid": os.getuid()}).encode()
        content_type = b"application/json"
    elif path == "/slow":
        seconds = float(parse_qs(scope["query_string"].decode()).get("s", ["1"])[0])
        await asyncio.sleep(seconds)
        body = b"slow done\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})
