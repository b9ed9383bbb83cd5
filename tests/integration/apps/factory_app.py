"""`create_app()` for --factory; counts how often the factory was called."""

import json

CALLS = 0


def create_app():
    global CALLS
    CALLS += 1
    calls_at_creation = CALLS

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = json.dumps({"made_by": "create_app", "factory_calls": CALLS, "instance": calls_at_creation}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return app
