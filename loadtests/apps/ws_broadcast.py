"""Raw ASGI WebSocket broadcast: a message received from any socket goes to all others.

CONNECTED holds the send callable of every accepted socket. A socket is added right
after its accept and removed when it disconnects or when a send to it fails (the
server raises when the client has gone, e.g. narwhal.ClientDisconnected or
websockets' ConnectionClosed under uvicorn). Sends happen one after another from the
task of the socket that sent the message, so a slow subscriber slows the fan-out
(the servers bound their per-socket send buffers). Handles the lifespan protocol;
a plain HTTP request gets 404.
"""

from ws_common import lifespan, not_found

CONNECTED = set()


async def broadcast(sender, message):
    out = {"type": "websocket.send"}
    if message.get("text") is not None:
        out["text"] = message["text"]
    else:
        out["bytes"] = message.get("bytes") or b""
    for send in list(CONNECTED):  # a copy: the set changes when sockets come and go
        if send is sender:
            continue
        try:
            await send(out)
        except Exception:  # the socket is gone (or going); stop sending to it
            CONNECTED.discard(send)


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        CONNECTED.add(send)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.receive":
                    await broadcast(send, message)
                elif message["type"] == "websocket.disconnect":
                    return
        finally:
            CONNECTED.discard(send)
    elif kind == "lifespan":
        await lifespan(receive, send, on_shutdown=CONNECTED.clear)
    elif kind == "http":
        await not_found(send)
