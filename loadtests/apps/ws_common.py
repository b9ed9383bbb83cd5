"""What the WebSocket benchmark apps (ws_echo, ws_broadcast, ws_broadcast_pubsub) share
besides their WebSocket handling: the lifespan protocol and the 404 for plain HTTP."""


async def lifespan(receive, send, on_shutdown=None):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_shutdown is not None:
                on_shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def not_found(send):
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9")]})
    await send({"type": "http.response.body", "body": b"not found"})
