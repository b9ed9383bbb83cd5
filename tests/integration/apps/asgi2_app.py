"""ASGI 2 ("double callable") applications: a class and a plain function."""


class App:
    """Instantiated with the scope; the instance is awaited with receive/send."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        if self.scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = f"asgi2 class {self.scope['method']} {self.scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})


def app_function(scope):
    """A plain function taking only the scope and returning a coroutine function."""

    async def asgi(receive, send):
        if scope["type"] != "http":
            raise RuntimeError("only http")
        body = f"asgi2 function {scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})

    return asgi
