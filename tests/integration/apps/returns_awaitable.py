"""An ASGI 3 callable whose __call__ is a plain method returning an awaitable
(as produced by wrappers and decorators), not an `async def`."""


class App:
    def __call__(self, scope, receive, send):
        return self._handle(scope, receive, send)

    async def _handle(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"asgi3 awaitable " + scope["path"].encode()})


app = App()
