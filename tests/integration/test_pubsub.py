"""The narwhal.pubsub extension in one server process: subscribers get publications as
frames written by the server, in order, from HTTP and WebSocket publishers; the slow-
consumer policies; unsubscribe and close; bad messages; the counters in /metrics.

Clients: the `websockets` package (1,000 sockets in one process), raw sockets for a
client that reads nothing. App: apps/pubsub_app.py (its docstring lists the commands).
Other workers: test_pubsub_workers.py; other servers through Redis: test_pubsub_redis.py.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
import urllib.request

import pytest

from rawws import encode_frame, raw_upgrade, read_until_close_frame
from test_interpreters import needs_own_gil
from test_metrics import metrics_url, scrape, value, wait_metric
from wsclient import connect

APP = "pubsub_app:app"
GUARD = 60.0  # a failure guard for 1,000 sockets on a busy machine, not a timing


def post(server, target: str, body: bytes = b"m") -> str:
    req = urllib.request.Request(server.url + target, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=GUARD) as resp:
        return resp.read().decode()


def get(server, target: str) -> str:
    with urllib.request.urlopen(server.url + target, timeout=GUARD) as resp:
        return resp.read().decode()


def ws_url(server, target: str) -> str:
    return f"ws://{server.host}:{server.port}{target}"


async def subscribed(server, topics: str, n: int = 1, **kw):
    """`n` sockets subscribed to `topics`, each having said "ready" (its subscribe
    commands went before that frame, on the same connection)."""
    socks = []
    for _ in range(n):
        ws = await connect(ws_url(server, f"/ws?topics={topics}&ready=1"), max_size=None,
                           **kw).__aenter__()
        socks.append(ws)
    for ws in socks:
        assert await asyncio.wait_for(ws.recv(), GUARD) == "ready"
    return socks


async def close_all(socks) -> None:
    await asyncio.gather(*(ws.close() for ws in socks), return_exceptions=True)


async def command(ws, text: str, answer: str) -> list:
    """Sends a command and reads up to its answer; returns the publications before it."""
    await ws.send(text)
    before = []
    while True:
        msg = await asyncio.wait_for(ws.recv(), GUARD)
        if msg == answer:
            return before
        before.append(msg)


def test_thousand_sockets_get_every_publication_in_order(narwhal):
    """1,000 subscribed sockets, 100 messages published from one HTTP POST: every socket
    gets all 100, in order, and /metrics counts 100 publications and 100,000 deliveries."""
    server = narwhal(APP, "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)

    async def main():
        socks = await subscribed(server, "news", 1000)
        try:
            assert await asyncio.to_thread(post, server, "/publish?topic=news&count=100",
                                           b"n") == "published 100"

            async def drain(ws):
                return [await asyncio.wait_for(ws.recv(), GUARD) for _ in range(100)]

            got = await asyncio.gather(*(drain(ws) for ws in socks))
            want = [f"n-{i}" for i in range(100)]
            bad = [i for i, g in enumerate(got) if g != want]
            assert not bad, f"{len(bad)} sockets got something else, e.g. {got[bad[0]][:5]}"
            m = scrape(url)
            assert value(m, "narwhal_pubsub_published_total") == 100
            assert value(m, "narwhal_pubsub_delivered_total") == 100_000
            assert value(m, "narwhal_pubsub_subscriptions") == 1000
            assert value(m, "narwhal_pubsub_dropped_total") == 0
        finally:
            await close_all(socks)
        # Closed sockets leave their topics.
        wait_metric(url, "narwhal_pubsub_subscriptions", lambda v: v == 0)

    asyncio.run(main())


def test_topics_unsubscribe_bytes_and_own_publications(narwhal):
    """Only a topic's subscribers get it; unsubscribe stops it at once (in order with the
    socket's own messages); a publication as bytes arrives as a binary frame; a socket
    that publishes to its own topic gets its own publication."""
    server = narwhal(APP)

    async def main():
        a, b = await subscribed(server, "x,y", 2)
        (c,) = await subscribed(server, "y")
        try:
            await asyncio.to_thread(post, server, "/publish?topic=x", b"to-x")
            await asyncio.to_thread(post, server, "/publish?topic=y&bytes=1", b"\x00\xff")
            for ws in (a, b):
                assert await asyncio.wait_for(ws.recv(), GUARD) == "to-x"
                assert await asyncio.wait_for(ws.recv(), GUARD) == b"\x00\xff"
            assert await asyncio.wait_for(c.recv(), GUARD) == b"\x00\xff"
            # Unsubscribed before the answer: a publication after it is not sent to `a`.
            assert await command(a, "unsub:x", "ok:unsub:x") == []
            await asyncio.to_thread(post, server, "/publish?topic=x", b"second")
            assert await asyncio.wait_for(b.recv(), GUARD) == "second"
            # `a` still has y: the next frame it gets is y's, not x's second.
            await asyncio.to_thread(post, server, "/publish?topic=y", b"marker")
            assert await asyncio.wait_for(a.recv(), GUARD) == "marker"
            # Own publication: subscribe, publish, both in order on one connection.
            before = await command(c, "sub:z", "ok:sub:z")
            assert before == ["marker"], before  # y's, published before the command
            await c.send("pub:z:self")
            got = {await asyncio.wait_for(c.recv(), GUARD) for _ in range(2)}
            assert got == {"self", "ok:pub"}, got
            # Subscribing twice is one subscription: one copy per publication.
            await command(c, "sub:z", "ok:sub:z")
            await asyncio.to_thread(post, server, "/publish?topic=z", b"once")
            await asyncio.to_thread(post, server, "/publish?topic=y", b"after")
            rest = [await asyncio.wait_for(c.recv(), GUARD) for _ in range(2)]
            assert rest == ["once", "after"], rest
        finally:
            await close_all([a, b, c])

    asyncio.run(main())


def test_publication_after_the_socket_closed_reaches_the_others(narwhal):
    """A handler may publish after its own socket closed (a chat's "left" notice)."""
    server = narwhal(APP)

    async def main():
        (watcher,) = await subscribed(server, "room")
        leaver = await connect(ws_url(server, "/ws?farewell=room&ready=1")).__aenter__()
        assert await asyncio.wait_for(leaver.recv(), GUARD) == "ready"
        await leaver.close()
        assert await asyncio.wait_for(watcher.recv(), GUARD) == "bye"
        await watcher.close()

    asyncio.run(main())


def test_extension_is_advertised_in_both_scopes(narwhal):
    server = narwhal(APP)
    assert "narwhal.pubsub" in get(server, "/extensions").split(",")

    async def main():
        # /ws-bad?case=... sends back what its bad message raised; here: one allowed in a
        # websocket scope, from which we read that subscribe works after accept.
        (ws,) = await subscribed(server, "t")
        assert await command(ws, "sub:u", "ok:sub:u") == []
        await ws.close()

    asyncio.run(main())


@pytest.mark.parametrize("case, error", [
    ("unknown", "RuntimeError:Unknown narwhal.pubsub message type 'narwhal.pubsub.shout'"),
    ("no-topic", "TypeError:ASGI 'topic' of a narwhal.pubsub message must be a non-empty str."),
    ("empty-topic", "TypeError:ASGI 'topic' of a narwhal.pubsub message must be a non-empty str."),
    ("int-topic", "TypeError:ASGI 'topic' of a narwhal.pubsub message must be a non-empty str."),
    ("both", "TypeError:'narwhal.pubsub.publish' needs exactly one of 'text'"),
    ("neither", "TypeError:'narwhal.pubsub.publish' needs exactly one of 'text'"),
    ("text-bytes", "TypeError:'narwhal.pubsub.publish' needs exactly one of 'text'"),
    ("bytes-text", "TypeError:'narwhal.pubsub.publish' needs exactly one of 'text'"),
    ("subscribe", "RuntimeError:'narwhal.pubsub.subscribe' is only valid on an accepted, open "
                  "WebSocket."),
    ("unsubscribe", "RuntimeError:'narwhal.pubsub.unsubscribe' is only valid on an accepted"),
])
def test_bad_messages_in_http_scope_raise_clear_errors(narwhal, case, error):
    """The app gets the error from send(); the server answers the same request after it."""
    server = narwhal(APP)
    assert get(server, f"/bad?case={case}").startswith("error:" + error)


@pytest.mark.parametrize("case, error", [
    ("before-accept", "RuntimeError:'narwhal.pubsub.subscribe' is only valid on an accepted"),
    ("publish-before-accept", "RuntimeError:'narwhal.pubsub.publish' from a WebSocket handler "
                              "needs 'websocket.accept' first."),
    ("sub-no-topic", "TypeError:ASGI 'topic' of a narwhal.pubsub message must be a non-empty"),
    ("unknown", "RuntimeError:Unknown narwhal.pubsub message type"),
    ("neither", "TypeError:'narwhal.pubsub.publish' needs exactly one of 'text'"),
])
def test_bad_messages_in_websocket_scope_raise_clear_errors(narwhal, case, error):
    server = narwhal(APP)

    async def main():
        async with connect(ws_url(server, f"/ws-bad?case={case}")) as ws:
            assert (await asyncio.wait_for(ws.recv(), GUARD)).startswith("error:" + error)

    asyncio.run(main())


def test_subscribe_after_the_app_closed_raises(narwhal):
    server = narwhal(APP)

    async def main():
        (watcher,) = await subscribed(server, "report")
        async with connect(ws_url(server, "/ws-bad?case=after-close&report=report")) as ws:
            await ws.wait_closed()
        got = await asyncio.wait_for(watcher.recv(), GUARD)
        assert got.startswith("error:RuntimeError:'narwhal.pubsub.subscribe' is only valid"), got
        await watcher.close()

    asyncio.run(main())


# --- slow subscribers --------------------------------------------------------------

BIG = 64 * 1024  # so a client that reads nothing fills the kernel's buffers quickly


def flood(server, publisher, reader, count: int) -> list:
    """Publishes `count` BIG messages one at a time, each after `reader` (a subscriber that
    reads) got the previous one, so it is never behind; returns what `reader` got."""
    async def main():
        got = []
        for i in range(count):
            await command(publisher, f"pub:big:{i:06d}" + "x" * BIG, "ok:pub")
            got.append(await asyncio.wait_for(reader.recv(), GUARD))
        return got

    return main


def start_slow(server):
    """A subscriber of "big" that never reads, on a 4 KiB receive buffer."""
    return raw_upgrade(server, "/ws?topics=big&ready=1")


def numbers(frames) -> list[int]:
    return [int(f[:6]) for f in frames]


def test_slow_subscriber_is_closed_with_1008_by_default(narwhal):
    """Default policy (wait): a publication cannot wait for one socket, so a subscriber
    with --pubsub-max-queue publications queued is closed with 1008 at once; the one that
    reads gets every publication."""
    server = narwhal(APP, "--no-ws-per-message-deflate", "--pubsub-max-queue", "8",
                     "--metrics-bind", "127.0.0.1:0", "--ws-send-timeout", "5")
    url = metrics_url(server)

    async def main():
        slow = start_slow(server)
        try:
            (reader,) = await subscribed(server, "big")
            publisher = await connect(ws_url(server, "/ws")).__aenter__()
            n = 300  # 19 MiB: more than any kernel buffers between the two ends hold
            got = await flood(server, publisher, reader, n)()
            assert [int(g[:6]) for g in got] == list(range(n))
            server.wait_for_log(r"Closing a WebSocket subscriber whose client did not take 8 "
                                r"queued publications", timeout=GUARD)
            close = await asyncio.to_thread(read_until_close_frame, slow)
            assert close[:2] == struct.pack("!H", 1008), close
            m = wait_metric(url, "narwhal_websocket_slow_consumer_closes_total", lambda v: v == 1)
            assert value(m, "narwhal_pubsub_dropped_total") == 0
            await close_all([reader, publisher])
        finally:
            slow.close()

    asyncio.run(main())


def test_drop_policy_skips_and_counts_and_keeps_the_socket(narwhal):
    """--ws-slow-consumer drop: a subscriber with a full queue misses publications (counted
    in narwhal_pubsub_dropped_total), stays open, and what it does get is in order."""
    server = narwhal(APP, "--no-ws-per-message-deflate", "--pubsub-max-queue", "8",
                     "--ws-slow-consumer", "drop", "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)

    async def main():
        slow = start_slow(server)
        try:
            (reader,) = await subscribed(server, "big")
            publisher = await connect(ws_url(server, "/ws")).__aenter__()
            n = 300
            got = await flood(server, publisher, reader, n)()
            assert [int(g[:6]) for g in got] == list(range(n))
            m = wait_metric(url, "narwhal_pubsub_dropped_total", lambda v: v > 0)
            dropped = value(m, "narwhal_pubsub_dropped_total")
            assert value(m, "narwhal_websocket_slow_consumer_closes_total") == 0
            # The slow client now reads: whole frames, increasing, with the gap it missed;
            # it is still open (a command it sends is answered after the backlog).
            slow.settimeout(GUARD)
            slow.sendall(encode_frame(0x1, b"pid"))
            seen = await asyncio.to_thread(read_texts_until, slow, "pid:")
            nums = [int(f[:6]) for f in seen]
            assert nums == sorted(nums) and len(set(nums)) == len(nums), nums[:20]
            assert len(nums) + dropped == n, (len(nums), dropped)
            assert "Closing a WebSocket" not in server.log()
            await close_all([reader, publisher])
        finally:
            slow.close()

    asyncio.run(main())


def read_texts_until(sock, prefix: str) -> list[str]:
    """Text messages from a raw socket (fragments joined: the server fragments big ones)
    until one starting with `prefix` (not included)."""
    buf = bytearray()

    def need(n: int) -> None:
        while len(buf) < n:
            chunk = sock.recv(1 << 20)
            assert chunk, "EOF: the socket was closed"
            buf.extend(chunk)

    out = []
    message = bytearray()
    while True:
        need(2)
        fin, opcode, n, head = buf[0] & 0x80, buf[0] & 0x0F, buf[1] & 0x7F, 2
        if n == 126:
            need(4)
            n, head = struct.unpack("!H", buf[2:4])[0], 4
        elif n == 127:
            need(10)
            n, head = struct.unpack("!Q", buf[2:10])[0], 10
        need(head + n)
        assert opcode in (0x0, 0x1), opcode
        assert (opcode == 0x1) == (not message), "a new message inside a fragmented one"
        message += buf[head:head + n]
        del buf[:head + n]
        if not fin:
            continue
        text = message.decode()
        message.clear()
        if text.startswith(prefix):
            return out
        if text != "ready":
            out.append(text)


def test_deflate_subscribers_get_the_same_messages(narwhal):
    """permessage-deflate is negotiated per socket: a compressing and a plain subscriber get
    the same publications."""
    server = narwhal(APP)

    async def main():
        (plain,) = await subscribed(server, "d", compression=None)
        (deflated,) = await subscribed(server, "d")
        try:
            await asyncio.to_thread(post, server, "/publish?topic=d&count=20", b"z" * 4000)
            for ws in (plain, deflated):
                got = [await asyncio.wait_for(ws.recv(), GUARD) for _ in range(20)]
                assert got == ["z" * 4000 + f"-{i}" for i in range(20)]
        finally:
            await close_all([plain, deflated])

    asyncio.run(main())


@needs_own_gil
def test_interpreters_share_topics(narwhal):
    """--interpreters 2: sockets served by either interpreter get a publication made in
    either (the I/O threads and the fan-out are the process's, not an interpreter's)."""
    server = narwhal(APP, "--interpreters", "2", "--io-threads", "2")

    async def main():
        socks = await subscribed(server, "i", 8)
        try:
            for _ in range(4):
                await asyncio.to_thread(post, server, "/publish?topic=i", b"all")
            for ws in socks:
                got = [await asyncio.wait_for(ws.recv(), GUARD) for _ in range(4)]
                assert got == ["all"] * 4
        finally:
            await close_all(socks)

    asyncio.run(main())
