"""Context variables set outside any request, for --reset-contextvars: one at import (in
the interpreter's own context), one in lifespan startup (in the lifespan's task). Every
request answers "<at_import> <in_lifespan>", "unset" for a variable it does not see.

`app_with_factory` also installs a task factory in startup, as tracing libraries do: it
makes the requests' tasks then, and must be handed the same context."""

from __future__ import annotations

import asyncio
import contextvars

at_import = contextvars.ContextVar("at_import", default="unset")
at_import.set("import")
in_lifespan = contextvars.ContextVar("in_lifespan", default="unset")


def _factory(loop, coro, **kwargs):
    return asyncio.Task(coro, loop=loop, **kwargs)


def _make(install_factory: bool):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    in_lifespan.set("lifespan")
                    if install_factory:
                        asyncio.get_running_loop().set_task_factory(_factory)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = f"{at_import.get()} {in_lifespan.get()}".encode()
        at_import.set("changed by a request")  # seen by no other request either way
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


app = _make(False)
app_with_factory = _make(True)
