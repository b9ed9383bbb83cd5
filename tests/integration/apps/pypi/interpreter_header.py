"""Wraps the ASGI app named by $WRAPPED_APP ("module:attribute") and adds an
`x-interpreter` header naming the interpreter that served each HTTP response."""

from __future__ import annotations

import importlib
import os
import sys

sys.path.append(os.path.join(os.path.dirname(__file__), ".."))  # interpreter_id, after the apps here
from interpreter_id import current_interpreter  # noqa: E402

_module, _attr = os.environ["WRAPPED_APP"].split(":")
_app = importlib.import_module(_module)
for _name in _attr.split("."):
    _app = getattr(_app, _name)
_HEADER = (b"x-interpreter", str(current_interpreter()).encode())


async def app(scope, receive, send):
    if scope["type"] != "http":
        return await _app(scope, receive, send)

    async def tagged(message):
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), _HEADER])
        await send(message)

    await _app(scope, receive, tagged)
