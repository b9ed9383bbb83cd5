"""An app that installs its own task factory and loop exception handler in lifespan
startup, the way Sentry, OpenTelemetry or aiomonitor do, and reports what they saw.

GET /spawn-failure  starts a background task that fails and drops it (its exception is
                    never retrieved); GET /report says what the factory and handler saw
GET /sleep          sleeps 30 s (for request deadlines)."""

from __future__ import annotations

import asyncio
import gc
import json

created: list[str] = []  # the type of each coroutine the app's factory wrapped
contexts: list[dict] = []  # what the app's exception handler received


def counting_factory(loop, coro, **kwargs):
    created.append(type(coro).__name__)
    return asyncio.Task(coro, loop=loop, **kwargs)


def recording_handler(loop, context):
    contexts.append(context)


async def _fail_in_background() -> None:
    raise RuntimeError("background failure (on purpose)")


async def _reply(send, payload) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


async def app(scope, receive, send):
    loop = asyncio.get_running_loop()
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                loop.set_task_factory(counting_factory)
                loop.set_exception_handler(recording_handler)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/spawn-failure":
        loop.create_task(_fail_in_background())  # dropped: nobody retrieves the exception
        await _reply(send, {"spawned": True})
    elif path == "/sleep":
        await asyncio.sleep(30)
        await _reply(send, {"woke": True})
    elif path == "/report":
        gc.collect()
        await _reply(send, {
            "created": created,
            "contexts": [str(c.get("exception")) for c in contexts],
            "factory_is_ours": loop.get_task_factory() is counting_factory,
            "handler_is_ours": loop.get_exception_handler() is recording_handler,
        })
    else:
        await _reply(send, {"path": path})
