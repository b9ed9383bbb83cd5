"""Raw ASGI WebSocket echo: every message comes back as it came (text or bytes).

Handles the lifespan protocol; a plain HTTP request gets 404.
"""

from ws_common import lifespan, not_found


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                if message.get("text") is not None:
                    await send({"type": "websocket.send", "text": message["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
            elif message["type"] == "websocket.disconnect":
                return
    elif kind == "lifespan":
        await lifespan(receive, send)
    elif kind == "http":
        await not_found(send)
