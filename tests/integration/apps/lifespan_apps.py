"""Raw ASGI apps exercising the lifespan protocol.

Every app prints its markers with flush=True so they appear in the server's log
(stdout and stderr are merged by the test harness).
"""

import json
import sys


def _log(msg: str) -> None:
    print(f"lifespan_apps: {msg}", file=sys.stderr, flush=True)


async def _respond(send, status: int, payload) -> None:
    body = json.dumps(payload).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def _drain(receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


async def _lifespan(scope, receive, send, on_startup=None) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if on_startup is not None:
                on_startup(scope)
            _log("startup complete")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _log("shutdown handler ran")
            await send({"type": "lifespan.shutdown.complete"})
            return


# --- state_app: lifespan state copied (shallowly) into every request ---------------

def _fill_state(scope) -> None:
    state = scope["state"]  # KeyError here means the server offers no lifespan state
    state["greeting"] = "hello from lifespan"
    state["hits"] = []  # a shared mutable object: the copy is shallow


async def state_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send, _fill_state)
        return
    await _drain(receive)
    state = scope.get("state")
    if state is None:
        await _respond(send, 500, {"error": "no state in scope"})
        return
    seen = {
        "keys": sorted(state),
        "greeting": state.get("greeting"),
        "hits_before": list(state.get("hits", [])),
    }
    # Mutations a request makes: rebinding/adding keys must not leak to the next
    # request (the server hands each request a copy); appending to the shared list does.
    state["greeting"] = "changed by " + scope["path"]
    state["added_by_request"] = scope["path"]
    state.setdefault("hits", []).append(scope["path"])
    await _respond(send, 200, seen)


# --- failing_startup_app: reports lifespan.startup.failed --------------------------

async def failing_startup_app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send({"type": "lifespan.startup.failed", "message": "database unreachable (on purpose)"})
        return
    await _drain(receive)
    await _respond(send, 200, {"served": True})


# --- no_lifespan_app: raises on the lifespan scope, like apps without support ------

async def no_lifespan_app(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError(f"no_lifespan_app only handles http, got {scope['type']!r}")
    await _drain(receive)
    await _respond(send, 200, {"served": True})


# --- recording_app: records which lifespan events it received ----------------------

EVENTS: list = []


async def recording_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            EVENTS.append(message["type"])
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _log("shutdown handler ran")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await _drain(receive)
    await _respond(send, 200, {"events": list(EVENTS), "has_state": "state" in scope})
