"""Callables that uvicorn-style factory detection must and must not call with no
arguments, for test_uvicorn_compat.py."""

import functools


async def _hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def _forwarding(app):
    # The shape of many decorators and middleware: (*args, **kwargs) passed through.
    @functools.wraps(app)
    async def wrapper(*args, **kwargs):
        return await app(*args, **kwargs)

    return wrapper


wrapped_app = _forwarding(_hello)


class Middleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, *args):
        await self.app(*args)


middleware_app = Middleware(_hello)


class App:
    """A class whose instances are the app: calling the class makes one (a factory)."""

    async def __call__(self, scope, receive, send):
        await _hello(scope, receive, send)
