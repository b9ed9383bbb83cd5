"""Raw ASGI WebSocket broadcast through narwhal's pubsub extension (narwhal.pubsub).

The same job as ws_broadcast.py, without the Python loop over sockets: after its
accept every socket subscribes to the topic "all", and a message received from any
socket is published to that topic with one send(); the server writes it to every
subscriber without entering Python per subscriber. A socket opened with the query
"role=publisher" does not subscribe, so the one that publishes gets no copy of its
own messages (ws_bench connects its publisher that way; ws_broadcast.py skips the
sender instead). A subscriber that itself sends would receive its own message too.

The server removes a socket's subscriptions when it closes. On a server without the
extension (not listed in scope["extensions"]) a WebSocket is refused (close before
accept: HTTP 403), so a comparison cannot silently run the wrong app. Handles the
lifespan protocol; a plain HTTP request gets 404.
"""

from urllib.parse import parse_qs

from ws_common import lifespan, not_found

TOPIC = "all"
PUBLISH = "narwhal.pubsub.publish"
SUBSCRIBE = "narwhal.pubsub.subscribe"


def is_publisher(scope) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return query.get("role", [""])[-1] == "publisher"


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "websocket":
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if "narwhal.pubsub" not in (scope.get("extensions") or {}):
            await send({"type": "websocket.close", "code": 1011})
            return
        await send({"type": "websocket.accept"})
        if not is_publisher(scope):
            await send({"type": SUBSCRIBE, "topic": TOPIC})
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                if message.get("text") is not None:
                    await send({"type": PUBLISH, "topic": TOPIC, "text": message["text"]})
                else:
                    await send({"type": PUBLISH, "topic": TOPIC,
                                "bytes": message.get("bytes") or b""})
            elif message["type"] == "websocket.disconnect":
                return
    elif kind == "lifespan":
        await lifespan(receive, send)
    elif kind == "http":
        await not_found(send)
