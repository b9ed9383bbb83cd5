"""Apps for test_concurrent_sends.py: several tasks of one request `await send()` at
once on one connection, imported as `concurrent_send_apps:app`.

Every payload message is tagged with its sender and sequence number (TAG: two
big-endian uint32) followed by filler, so the client can check counts and per-sender
order. The app never sleeps for a fixed time; what the client cannot see is written as
JSON (atomically) to files named by query parameters:

* `parked`: written once all senders are waiting inside `send()` at the same moment.
  Only a send that really parks lets another task run while it is inside `send()`, so
  this proves the connection's queue is full and every sender is parked.
* `report`: written when every sender task has finished: per sender, "ok",
  "cancelled" or the error `send` raised.

Routes:
* websocket `/ws?n=&count=&size=`: accept, run `n` sender tasks of `count` binary
  messages of `size` bytes, then send a final text message (the report as JSON) and
  close. With `cancel=1`, sender 0 is cancelled while it is parked.
* http `/stream?n=&count=&size=`: one chunked response; `n` tasks stream `count`
  chunks of `size` bytes each into it; the final empty body ends it.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, Awaitable, Callable, MutableMapping

from app_util import lifespan, query, write_report

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TAG = struct.Struct(">II")  # (sender, seq)


def payload(sender: int, seq: int, size: int) -> bytes:
    return TAG.pack(sender, seq) + bytes([65 + sender % 26]) * (size - TAG.size)


def outcome(exc: BaseException | None) -> Any:
    import narwhal  # the server's module: ClientDisconnected

    if exc is None:
        return "ok"
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    return {"exc_type": type(exc).__name__, "message": str(exc), "is_oserror": isinstance(exc, OSError),
            "is_client_disconnected": isinstance(exc, narwhal.ClientDisconnected)}


class Senders:
    """`n` tasks sending `count` messages each; `inside[i]` while sender i awaits send()."""

    def __init__(self, n: int, make_message: Callable[[int, int], Message], count: int, send: Send) -> None:
        self.inside = [False] * n
        self.sent = [0] * n
        self._make, self._count, self._send = make_message, count, send
        self.tasks = [asyncio.ensure_future(self._run(i)) for i in range(n)]

    async def _run(self, i: int) -> None:
        for seq in range(self._count):
            self.inside[i] = True
            try:
                await self._send(self._make(i, seq))
            finally:
                self.inside[i] = False
            self.sent[i] += 1

    async def wait_all_parked(self) -> bool:
        """True once every sender is parked inside send() at once (checked from this
        task, so each of them has yielded inside send()); False if any finished first."""
        while not all(self.inside):
            if any(t.done() for t in self.tasks):
                return False
            await asyncio.sleep(0.002)  # poll interval
        return True

    async def results(self) -> list[Any]:
        done = await asyncio.gather(*self.tasks, return_exceptions=True)
        return [outcome(r if isinstance(r, BaseException) else None) for r in done]


async def ws_app(scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    n, count, size = int(q.get("n", "2")), int(q.get("count", "200")), int(q.get("size", "65536"))
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    senders = Senders(n, lambda i, seq: {"type": "websocket.send", "bytes": payload(i, seq, size)}, count, send)
    parked = await senders.wait_all_parked()
    if parked:
        if q.get("cancel") == "1":
            senders.tasks[0].cancel()
        write_report(q.get("parked"), {"parked": n})
    results = await senders.results()
    report = {"parked": parked, "senders": results, "sent": senders.sent}
    write_report(q.get("report"), report)
    try:
        await send({"type": "websocket.send", "text": json.dumps(report)})
        await send({"type": "websocket.close", "code": 1000})
    except OSError:
        pass  # the client left: the report file says what happened


async def http_app(scope: Scope, receive: Receive, send: Send) -> None:
    q = query(scope)
    n, count, size = int(q.get("n", "4")), int(q.get("count", "64")), int(q.get("size", "65536"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    senders = Senders(
        n, lambda i, seq: {"type": "http.response.body", "body": payload(i, seq, size), "more_body": True},
        count, send)
    results = await senders.results()
    write_report(q.get("report"), {"senders": results, "sent": senders.sent})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    if scope["type"] == "websocket":
        return await ws_app(scope, receive, send)
    return await http_app(scope, receive, send)
