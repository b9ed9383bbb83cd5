"""Raw ASGI app: serialises {"message": "Hello, world!"} on every request."""

import json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps({"message": "Hello, world!"}).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body})
