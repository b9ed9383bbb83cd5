"""Functions over the narwhal.pubsub ASGI extension, for apps that prefer them to messages.

The extension itself is three send() messages (docs/websocket-gateway.md):

    {"type": "narwhal.pubsub.subscribe", "topic": "room:1"}      # an accepted WebSocket
    {"type": "narwhal.pubsub.unsubscribe", "topic": "room:1"}
    {"type": "narwhal.pubsub.publish", "topic": "room:1", "text": "hi"}   # or "bytes"

A subscribed socket receives every publication of the topic as a frame, written by the
server without running Python per subscriber. These helpers take the ASGI `send`
callable, or a Starlette/FastAPI `WebSocket` or `Request` (whose own send() accepts only
the spec's message types, so its underlying ASGI send is used).

    from narwhal import pubsub

    async def chat(websocket):               # Starlette
        await websocket.accept()
        await pubsub.subscribe(websocket, "room:1")
        async for text in websocket.iter_text():
            await pubsub.publish(websocket, "room:1", text)
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping, Union

__all__ = ["available", "publish", "subscribe", "unsubscribe"]

EXTENSION = "narwhal.pubsub"

Send = Callable[[Mapping[str, Any]], Awaitable[None]]


def _send_of(target: Any) -> Send:
    # Starlette's HTTPConnection subclasses keep the raw ASGI send as `_send`; a plain
    # callable is the ASGI send itself.
    send = getattr(target, "_send", None)
    if send is not None and callable(send):
        return send
    if callable(target):
        return target
    raise TypeError(
        f"expected an ASGI send callable or a Starlette WebSocket/Request, got {type(target).__name__}"
    )


def available(scope: Mapping[str, Any]) -> bool:
    """True when the server offers narwhal.pubsub in this scope (or a Starlette
    connection's scope)."""
    scope = getattr(scope, "scope", scope)
    return EXTENSION in (scope.get("extensions") or {})


async def subscribe(target: Any, topic: str) -> None:
    """From now on the WebSocket receives every publication of `topic` as a frame."""
    await _send_of(target)({"type": "narwhal.pubsub.subscribe", "topic": topic})


async def unsubscribe(target: Any, topic: str) -> None:
    """Stop receiving `topic`. Closing the socket leaves every topic by itself."""
    await _send_of(target)({"type": "narwhal.pubsub.unsubscribe", "topic": topic})


async def publish(target: Any, topic: str, message: Union[str, bytes]) -> None:
    """Send `message` (a str goes as a text frame, bytes as a binary one) to every
    subscriber of `topic`. Returns once the server has it, not once it is delivered."""
    if isinstance(message, str):
        body = {"text": message}
    elif isinstance(message, (bytes, bytearray, memoryview)):
        body = {"bytes": bytes(message)}
    else:
        raise TypeError(f"a publication is a str or bytes, got {type(message).__name__}")
    await _send_of(target)({"type": "narwhal.pubsub.publish", "topic": topic, **body})
