"""Raw ASGI apps for the overload and memory scenarios (loadtests/overload.py, rss.py).

* ``app``: awaits 50 ms per request, then answers ``200 OK`` with a 2-byte body.
  With ``--limit-concurrency 32`` it admits at most 32 / 0.05 s = 640 requests/s.
* ``slow_upload``: reads the request body with a ``receive()`` loop, sleeping 1 ms
  between calls and keeping only a byte count, then answers the count as text.
* ``stream``: streams ``STREAM_BYTES`` (1 GiB) in 64 KiB ``http.response.body``
  messages with a Content-Length; one preallocated chunk, so the app itself
  allocates nothing per message. It stops at the first ``send()`` that raises
  (narwhal raises ``narwhal.ClientDisconnected``, an ``OSError``, once the client is
  gone; uvicorn 0.17 returns silently instead, so there the loop runs to the end).

Every app ignores non-HTTP scopes (lifespan is reported as unsupported).
"""

import asyncio

DELAY_S = 0.05
CHUNK = b"x" * 65536
STREAM_BYTES = 1 << 30


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await asyncio.sleep(DELAY_S)
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
    })
    await send({"type": "http.response.body", "body": b"OK"})


async def slow_upload(scope, receive, send):
    if scope["type"] != "http":
        return
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        received += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
        await asyncio.sleep(0.001)
    body = str(received).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})


async def stream(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/octet-stream"),
                    (b"content-length", str(STREAM_BYTES).encode())],
    })
    chunks = STREAM_BYTES // len(CHUNK)
    try:
        for i in range(chunks):
            await send({"type": "http.response.body", "body": CHUNK,
                        "more_body": i + 1 < chunks})
    except OSError:  # narwhal.ClientDisconnected: the client went away
        return
