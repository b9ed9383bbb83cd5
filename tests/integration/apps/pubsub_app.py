"""A raw ASGI app for the narwhal.pubsub tests.

websocket /ws?topics=a,b    accept, subscribe to each topic, then obey text commands:
                            "sub:T", "unsub:T" (answered "ok:sub:T" / "ok:unsub:T"),
                            "pub:T:payload" (answered "ok:pub"), "pid" (answered "pid:N"),
                            "close" (closes 1000). Publications arrive as frames.
websocket /ws-bad?case=C    a pubsub message the app may not send; the error's text is sent
                            back as "error:<type>:<text>" (after accepting, for cases that
                            must be tried before).
http POST /publish?topic=T&count=N[&bytes=1]
                            publishes N messages "<body>-<i>" (or the body once without
                            count), answers "published N".
http GET  /pid              the worker's pid.
http GET  /bad?case=C       tries a bad pubsub message in an http scope, answers
                            "error:<type>:<text>".
http GET  /extensions       the scope's extensions keys, comma separated.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs

PUB = "narwhal.pubsub.publish"
SUB = "narwhal.pubsub.subscribe"
UNSUB = "narwhal.pubsub.unsubscribe"


def _query(scope) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}


async def _text_response(send, status: int, text: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text.encode()})


async def _try(send, message) -> str:
    try:
        await send(message)
    except Exception as e:  # noqa: BLE001 - the test reads the error back
        return f"error:{type(e).__name__}:{e}"
    return "accepted"


BAD_MESSAGES = {
    "unknown": {"type": "narwhal.pubsub.shout", "topic": "t"},
    "no-topic": {"type": PUB, "text": "x"},
    "empty-topic": {"type": PUB, "topic": "", "text": "x"},
    "int-topic": {"type": PUB, "topic": 7, "text": "x"},
    "both": {"type": PUB, "topic": "t", "text": "x", "bytes": b"x"},
    "neither": {"type": PUB, "topic": "t"},
    "text-bytes": {"type": PUB, "topic": "t", "text": b"x"},
    "bytes-text": {"type": PUB, "topic": "t", "bytes": "x"},
    "subscribe": {"type": SUB, "topic": "t"},
    "unsubscribe": {"type": UNSUB, "topic": "t"},
    "sub-no-topic": {"type": SUB},
}


async def _http(scope, receive, send) -> None:
    path = scope["path"]
    q = _query(scope)
    if path == "/publish":
        body = b""
        while True:
            m = await receive()
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        topic = q["topic"]
        as_bytes = q.get("bytes") == "1"
        if "count" in q:
            n = int(q["count"])
            for i in range(n):
                payload = body + f"-{i}".encode()
                await send({"type": PUB, "topic": topic,
                            **({"bytes": payload} if as_bytes else {"text": payload.decode()})})
        else:
            n = 1
            await send({"type": PUB, "topic": topic,
                        **({"bytes": body} if as_bytes else {"text": body.decode()})})
        await _text_response(send, 200, f"published {n}")
    elif path == "/pid":
        await _text_response(send, 200, str(os.getpid()))
    elif path == "/bad":
        await _text_response(send, 200, await _try(send, BAD_MESSAGES[q["case"]]))
    elif path == "/extensions":
        await _text_response(send, 200, ",".join(sorted(scope.get("extensions") or {})))
    else:
        await _text_response(send, 404, "not found")


async def _ws(scope, receive, send) -> None:
    q = _query(scope)
    if scope["path"] == "/ws-bad":
        case = q["case"]
        if case in ("before-accept", "publish-before-accept"):
            message = ({"type": SUB, "topic": "t"} if case == "before-accept"
                       else {"type": PUB, "topic": "t", "text": "x"})
            result = await _try(send, message)
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": result})
            await receive()
            return
        await receive()
        await send({"type": "websocket.accept"})
        if case == "after-close":
            await send({"type": "websocket.close", "code": 1000})
            result = await _try(send, {"type": SUB, "topic": "t"})
            # The socket is gone: the result goes out through a publication instead.
            await send({"type": PUB, "topic": q["report"], "text": result})
            return
        await send({"type": "websocket.send", "text": await _try(send, BAD_MESSAGES[case])})
        await receive()
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    for topic in filter(None, q.get("topics", "").split(",")):
        await send({"type": SUB, "topic": topic})
    if q.get("ready") == "1":
        await send({"type": "websocket.send", "text": "ready"})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            if "farewell" in q:  # a publication after the socket closed still goes out
                await send({"type": PUB, "topic": q["farewell"], "text": "bye"})
            return
        text = m.get("text") or ""
        if text.startswith("sub:"):
            await send({"type": SUB, "topic": text[4:]})
            await send({"type": "websocket.send", "text": "ok:" + text})
        elif text.startswith("unsub:"):
            await send({"type": UNSUB, "topic": text[6:]})
            await send({"type": "websocket.send", "text": "ok:" + text})
        elif text.startswith("pub:"):
            _, topic, payload = text.split(":", 2)
            await send({"type": PUB, "topic": topic, "text": payload})
            await send({"type": "websocket.send", "text": "ok:pub"})
        elif text == "pid":
            await send({"type": "websocket.send", "text": f"pid:{os.getpid()}"})
        elif text == "close":
            await send({"type": "websocket.close", "code": 1000})
            return


async def app(scope, receive, send) -> None:
    if scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _ws(scope, receive, send)
    elif scope["type"] == "lifespan":
        while True:
            m = await receive()
            if m["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
