"""--pubsub-redis: narwhal.pubsub publications carried between servers (and between the
workers of one server) through a real Redis: Debian's redis-server, started here on
127.0.0.1 and an ephemeral port with its own directory, no persistence, and always
stopped by PID.

Cases: two servers sharing one Redis (every subscriber on both gets each publication
exactly once, in order; one Redis subscription per topic per process, not per socket);
a plain `redis-cli PUBLISH` (text, and bytes that are not UTF-8); --pubsub-redis-prefix
keeps two apps apart; --workers 2; Redis killed mid-run (local fan-out goes on, lost
publications counted, one warning) and restarted (delivery resumes, subscriptions
restored, reconnect counted); Redis not running at start; a bad URL; a stopped Redis
at --pubsub-redis-max-pending.

"Exactly once" is checked with a fence: once every remote subscriber has the last
publication, Redis has handled all of them, so any echo a server failed to skip would
be queued on its subscriber connection before a fence published after that.

App: apps/pubsub_app.py. Clients: the `websockets` package, urllib, redis-cli.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager

import pytest

from conftest import run_cli
from rawhttp import TIMESTAMP
from test_metrics import metrics_url, scrape, value, wait_metric
from test_pubsub import close_all, post, subscribed
from test_workers import start_master

APP = "pubsub_app:app"
GUARD = 30.0  # a failure guard on a busy machine, not a timing
REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"

pytestmark = pytest.mark.skipif(not os.path.exists(REDIS_SERVER),
                                reason="redis-server is not installed (deploy/install-deps.sh)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, what: str, timeout: float = GUARD):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)  # poll interval


class Redis:
    """A redis-server of this test: start() on `port` (again after stop/kill, the same
    port), stopped by PID."""

    def __init__(self, tmp_path, port: int) -> None:
        self.dir = tmp_path / "redis"
        self.dir.mkdir(exist_ok=True)
        self.port = port
        self.url = f"redis://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: self.proc.poll() is not None or self.cli("PING") == "PONG",
                   "redis-server answers PING")
        assert self.proc.poll() is None, (self.dir / "redis.log").read_text()

    def cli(self, *args: str, stdin: bytes | None = None) -> str:
        r = subprocess.run([REDIS_CLI, "-p", str(self.port), *args], input=stdin,
                           capture_output=True, timeout=GUARD)
        return r.stdout.decode(errors="replace").strip()

    def numsub(self, channel: str) -> int:
        out = self.cli("PUBSUB", "NUMSUB", channel).split()
        return int(out[1]) if len(out) == 2 else -1

    def wait_numsub(self, channel: str, n: int) -> None:
        wait_until(lambda: self.numsub(channel) == n, f"{n} subscriptions to {channel}")

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(GUARD)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # in case a test stopped it
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(GUARD)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(GUARD)


@contextmanager
def redis_server(tmp_path, start: bool = True):
    r = Redis(tmp_path, free_port())
    try:
        if start:
            r.start()
        yield r
    finally:
        r.stop()


@pytest.fixture
def redis(tmp_path):
    with redis_server(tmp_path) as r:
        yield r


def serve(narwhal, redis: Redis, *args: str):
    """A server on `redis`, waited for until its link is up."""
    server = narwhal(APP, "--pubsub-redis", redis.url, *args)
    server.wait_for_log(r"pubsub: connected to Redis at ", GUARD)
    return server


async def recv(ws, n: int) -> list:
    return [await asyncio.wait_for(ws.recv(), GUARD) for _ in range(n)]


async def fence(redis: Redis, channel: str, socks) -> list[list]:
    """Publishes "fence" straight to Redis; returns what each socket got before it."""
    redis.cli("PUBLISH", channel, "fence")
    out = []
    for ws in socks:
        before = []
        while (msg := await asyncio.wait_for(ws.recv(), GUARD)) != "fence":
            before.append(msg)
        out.append(before)
    return out


def test_two_servers_every_subscriber_gets_each_publication_once_in_order(narwhal, redis):
    a = serve(narwhal, redis)
    b = serve(narwhal, redis)

    async def main():
        socks_a = await subscribed(a, "news", 2)
        socks_b = await subscribed(b, "news", 2)
        everyone = socks_a + socks_b
        try:
            # One subscription per server, however many of its sockets subscribe.
            redis.wait_numsub("narwhal:news", 2)
            for origin, tag in ((a, "from-a"), (b, "from-b")):
                assert await asyncio.to_thread(post, origin, "/publish?topic=news&count=100",
                                               tag.encode()) == "published 100"
                want = [f"{tag}-{i}" for i in range(100)]
                for ws in everyone:
                    assert await recv(ws, 100) == want
                # Any copy Redis sent back to the publishing server that it did not skip
                # would come before the fence.
                assert await fence(redis, "narwhal:news", everyone) == [[]] * 4
            # Bytes stay bytes across servers.
            await asyncio.to_thread(post, a, "/publish?topic=news&bytes=1", b"\x00\xff")
            for ws in everyone:
                assert await asyncio.wait_for(ws.recv(), GUARD) == b"\x00\xff"
        finally:
            await close_all(everyone)
        # The last socket of a server leaving its topic unsubscribes the server.
        redis.wait_numsub("narwhal:news", 0)

    asyncio.run(main())


def test_plain_redis_publish_reaches_subscribers(narwhal, redis):
    """A message without narwhal's envelope: a text frame when it is UTF-8, else binary."""
    server = serve(narwhal, redis)

    async def main():
        (ws,) = await subscribed(server, "alerts")
        try:
            redis.wait_numsub("narwhal:alerts", 1)
            assert redis.cli("PUBLISH", "narwhal:alerts", "hello") == "1"
            assert await asyncio.wait_for(ws.recv(), GUARD) == "hello"
            # -x: the last argument from stdin, byte for byte.
            redis.cli("-x", "PUBLISH", "narwhal:alerts", stdin=b"\xff\x00bin")
            assert await asyncio.wait_for(ws.recv(), GUARD) == b"\xff\x00bin"
            redis.cli("PUBLISH", "narwhal:alerts", "caf\u00e9")
            assert await asyncio.wait_for(ws.recv(), GUARD) == "caf\u00e9"
        finally:
            await close_all([ws])

    asyncio.run(main())


def test_prefix_keeps_two_apps_apart(narwhal, redis):
    one_a = serve(narwhal, redis, "--pubsub-redis-prefix", "one:")
    one_b = serve(narwhal, redis, "--pubsub-redis-prefix", "one:")
    two = serve(narwhal, redis, "--pubsub-redis-prefix", "two:")

    async def main():
        (sa,) = await subscribed(one_a, "news")
        (sb,) = await subscribed(one_b, "news")
        (st,) = await subscribed(two, "news")
        try:
            redis.wait_numsub("one:news", 2)
            redis.wait_numsub("two:news", 1)
            assert redis.numsub("narwhal:news") == 0
            await asyncio.to_thread(post, one_a, "/publish?topic=news", b"for-one")
            assert await asyncio.wait_for(sa.recv(), GUARD) == "for-one"
            # Redis has handled it (the other server of the app has it): the other app's
            # first message is the fence.
            assert await asyncio.wait_for(sb.recv(), GUARD) == "for-one"
            assert await fence(redis, "two:news", [st]) == [[]]
        finally:
            await close_all([sa, sb, st])

    asyncio.run(main())


def test_workers_of_one_server_share_through_redis(narwhal, redis):
    """--workers 2: each worker holds its own subscription; a publication made in either
    worker reaches the subscribers of both (Redis is the link between them)."""
    # SO_REUSEPORT: the kernel spreads new connections over the workers' own sockets.
    server = start_master(narwhal, 2, "--reuse-port", "--pubsub-redis", redis.url, app=APP)
    wait_until(lambda: server.log().count("pubsub: connected to Redis") == 2,
               "both workers connected to Redis")

    async def pid_of(ws) -> int:
        await ws.send("pid")
        msg = await asyncio.wait_for(ws.recv(), GUARD)
        assert msg.startswith("pid:"), msg
        return int(msg[4:])

    async def main():
        socks, pids = [], {}
        try:
            # New connections until both workers hold some (the kernel picks the worker).
            while len(set(pids.values())) < 2:
                assert len(socks) < 200, f"every socket went to one worker: {set(pids.values())}"
                (ws,) = await subscribed(server, "news")
                socks.append(ws)
                pids[ws] = await pid_of(ws)
            redis.wait_numsub("narwhal:news", 2)  # one per worker, not one per socket
            # Published in each worker in turn, through a socket of that worker.
            for pid in sorted(set(pids.values())):
                publisher = next(ws for ws in socks if pids[ws] == pid)
                await publisher.send(f"pub:news:from-{pid}")
                for ws in socks:
                    if ws is publisher:  # its answer and its own copy, in either order
                        assert sorted(await recv(ws, 2)) == sorted(["ok:pub", f"from-{pid}"])
                    else:
                        assert await asyncio.wait_for(ws.recv(), GUARD) == f"from-{pid}"
            # An HTTP publication (whichever worker takes it): 50 in order everywhere.
            await asyncio.to_thread(post, server, "/publish?topic=news&count=50", b"h")
            want = [f"h-{i}" for i in range(50)]
            for ws in socks:
                assert await recv(ws, 50) == want
            assert await fence(redis, "narwhal:news", socks) == [[]] * len(socks)
        finally:
            await close_all(socks)

    asyncio.run(main())
