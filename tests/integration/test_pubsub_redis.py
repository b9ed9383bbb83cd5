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
import subprocess
import time
from contextlib import contextmanager

import pytest

from balancers import free_port
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

    def __init__(self, tmp_path, port: int, *extra: str, cli_args: tuple[str, ...] = ()) -> None:
        self.dir = tmp_path / "redis"
        self.dir.mkdir(exist_ok=True)
        self.port = port
        self.url = f"redis://127.0.0.1:{port}"
        self.extra = extra  # more redis-server options
        # redis-cli's connection options: the port, unless a socket is given.
        self.cli_args = cli_args if "-s" in cli_args else ("-p", str(port), *cli_args)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no", *self.extra],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: self.proc.poll() is not None or self.cli("PING") == "PONG",
                   "redis-server answers PING")
        assert self.proc.poll() is None, (self.dir / "redis.log").read_text()

    def cli(self, *args: str, stdin: bytes | None = None) -> str:
        r = subprocess.run([REDIS_CLI, *self.cli_args, *args], input=stdin,
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
def redis_server(tmp_path, *extra: str, start: bool = True, port: int | None = None,
                 cli_args: tuple[str, ...] = ()):
    r = Redis(tmp_path, free_port() if port is None else port, *extra, cli_args=cli_args)
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
    """A message without narwhal's envelope: a text frame when it is UTF-8, else binary.
    (The URL names a host, resolved off the relay's thread.)"""
    server = narwhal(APP, "--pubsub-redis", f"redis://localhost:{redis.port}")
    server.wait_for_log(r"pubsub: connected to Redis at redis://localhost:", GUARD)

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


UNREACHABLE = r"^" + TIMESTAMP + r"WARNING:\s+pubsub: Redis at \S+ unreachable: .*; retrying"
ATTEMPT = "pubsub: connecting to Redis at "


def attempts(server) -> int:
    return server.log().count(ATTEMPT)


def test_redis_killed_then_restarted(narwhal, redis):
    """Redis killed mid-run: each server's own subscribers still get its publications,
    those that could not go to Redis are counted lost, one warning per outage however
    many retries fail. Redis back on the same port: the servers reconnect, subscribe
    again, and delivery across servers resumes."""
    a = serve(narwhal, redis, "--metrics-bind", "127.0.0.1:0", "--log-level", "debug")
    b = serve(narwhal, redis, "--metrics-bind", "127.0.0.1:0")
    url_a, url_b = metrics_url(a), metrics_url(b)

    async def main():
        (sa,) = await subscribed(a, "news")
        (sb,) = await subscribed(b, "news")
        try:
            redis.wait_numsub("narwhal:news", 2)
            for url in (url_a, url_b):
                assert value(scrape(url), "narwhal_pubsub_redis_connected") == 1
                assert value(scrape(url), "narwhal_pubsub_redis_lost_total") == 0

            redis.kill()
            for url in (url_a, url_b):
                wait_metric(url, "narwhal_pubsub_redis_connected", lambda v: v == 0)
            # Local fan-out goes on; Redis gets none of it.
            await asyncio.to_thread(post, a, "/publish?topic=news&count=10", b"local")
            assert await recv(sa, 10) == [f"local-{i}" for i in range(10)]
            wait_metric(url_a, "narwhal_pubsub_redis_lost_total", lambda v: v == 10)
            # Several attempts have failed since, and were not each reported.
            seen = attempts(a)
            wait_until(lambda: attempts(a) >= seen + 2, "two more connection attempts")
            assert len(re.findall(UNREACHABLE, a.log(), re.M)) == 1, a.log()
            assert len(re.findall(UNREACHABLE, b.log(), re.M)) == 1, b.log()

            redis.start()
            # Across servers again: publish on `a` until `b`'s subscriber hears one.
            deadline = time.monotonic() + GUARD
            n = 0
            while True:
                assert time.monotonic() < deadline, "no delivery across servers after restart"
                await asyncio.to_thread(post, a, "/publish?topic=news", f"probe-{n}".encode())
                assert await asyncio.wait_for(sa.recv(), GUARD) == f"probe-{n}"
                n += 1
                try:
                    got = await asyncio.wait_for(sb.recv(), 0.5)  # poll interval
                    assert got.startswith("probe-"), got
                    break
                except asyncio.TimeoutError:
                    pass
            # Both servers subscribed again, and said so.
            redis.wait_numsub("narwhal:news", 2)
            for server, url in ((a, url_a), (b, url_b)):
                server.wait_for_log(
                    r"pubsub: reconnected to Redis at \S+, 1 topics resubscribed", GUARD)
                m = wait_metric(url, "narwhal_pubsub_redis_connected", lambda v: v == 1)
                assert value(m, "narwhal_pubsub_redis_reconnects_total") == 1
            # `b` may still get a later probe (one slower than the poll interval).
            before_a, before_b = await fence(redis, "narwhal:news", [sa, sb])
            assert before_a == [] and all(m.startswith("probe-") for m in before_b), before_b
            # From `b` to `a` too, in order, once.
            await asyncio.to_thread(post, b, "/publish?topic=news&count=5", b"back")
            want = [f"back-{i}" for i in range(5)]
            assert await recv(sb, 5) == want
            assert await recv(sa, 5) == want
            assert await fence(redis, "narwhal:news", [sa, sb]) == [[], []]
        finally:
            await close_all([sa, sb])

    asyncio.run(main())
    # Stopping while Redis is down (a retry timer pending) is clean too.
    redis.kill()
    wait_metric(url_b, "narwhal_pubsub_redis_connected", lambda v: v == 0)
    assert a.stop() == 0, a.log()
    assert b.stop() == 0, b.log()


def test_redis_not_running_at_start(narwhal, tmp_path):
    """The server starts and serves its own subscribers; when Redis appears it connects."""
    with redis_server(tmp_path, start=False) as redis:
        server = narwhal(APP, "--pubsub-redis", redis.url)
        server.wait_for_log(UNREACHABLE, GUARD)

        async def main():
            (ws,) = await subscribed(server, "news")
            try:
                await asyncio.to_thread(post, server, "/publish?topic=news", b"alone")
                assert await asyncio.wait_for(ws.recv(), GUARD) == "alone"
                redis.start()
                server.wait_for_log(r"pubsub: connected to Redis at \S+, 1 topics subscribed",
                                    GUARD)
                redis.wait_numsub("narwhal:news", 1)
                redis.cli("PUBLISH", "narwhal:news", "via-redis")
                assert await asyncio.wait_for(ws.recv(), GUARD) == "via-redis"
            finally:
                await close_all([ws])

        asyncio.run(main())
        assert len(re.findall(UNREACHABLE, server.log(), re.M)) == 1, server.log()


@pytest.mark.parametrize("url, why", [
    ("localhost:6379", "expected redis://"),
    ("redis://h:99999", "bad port"),
    ("redis://h/db", "bad database number"),
    ("rediss://h", "TLS"),
])
def test_bad_url_stops_start_up(url, why):
    r = run_cli(APP, "--pubsub-redis", url)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--pubsub-redis" in r.stderr and why in r.stderr, r.stderr
    r = run_cli(APP, env={"NARWHAL_PUBSUB_REDIS": url})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "NARWHAL_PUBSUB_REDIS" in r.stderr, r.stderr


@contextmanager
def silent_listener():
    """A port that accepts connections and never answers, as a hung Redis (or a balancer
    in front of a dead one) does. Yields (port, a function counting the accepted ones)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed at the end
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], lambda: len(accepted)
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not)
        listener.close()
        thread.join(GUARD)
        for conn in accepted:
            conn.close()


def test_connect_timeout_and_retry_max(narwhal):
    """An attempt whose connections get no answer is abandoned after
    --pubsub-redis-connect-timeout; the wait before the next one never exceeds
    --pubsub-redis-retry-max. Meanwhile the server serves its own subscribers."""
    with silent_listener() as (port, accepted):
        server = narwhal(APP, "--pubsub-redis", f"redis://127.0.0.1:{port}",
                         "--pubsub-redis-connect-timeout", "0.3", "--pubsub-redis-retry-max", "0.2",
                         "--log-level", "debug")
        m = server.wait_for_log(UNREACHABLE, GUARD)
        assert "no answer within 0.3 s" in m.group(0), m.group(0)
        delays = wait_until(
            lambda: [int(d) for d in re.findall(r"next Redis attempt in (\d+) ms", server.log())]
            if server.log().count("next Redis attempt in") >= 5 else None,
            "five retries")
        # Drawn between half and all of 100 ms, then of the 200 ms cap (not 400, 800, ...).
        assert 50 <= delays[0] <= 100 and all(100 <= d <= 200 for d in delays[1:]), delays
        assert accepted() >= 2 * 5, accepted()  # a subscriber and a publisher connection each
        assert len(re.findall(UNREACHABLE, server.log(), re.M)) == 1, server.log()

        async def main():
            (ws,) = await subscribed(server, "news")
            try:
                await asyncio.to_thread(post, server, "/publish?topic=news", b"local")
                assert await asyncio.wait_for(ws.recv(), GUARD) == "local"
            finally:
                await close_all([ws])

        asyncio.run(main())
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize("flag", ["--pubsub-redis-connect-timeout", "--pubsub-redis-retry-max"])
def test_redis_times_must_be_positive(flag):
    r = run_cli(APP, "--pubsub-redis", "redis://127.0.0.1:1", flag, "0")
    assert r.returncode == 2, r.stdout + r.stderr
    assert flag in r.stderr and "a positive number of seconds" in r.stderr, r.stderr


def test_stopped_redis_at_max_pending(narwhal, redis):
    """A Redis that stops answering (SIGSTOP) while connected: --pubsub-redis-max-pending
    publications wait for their replies, further ones are counted lost at once (with one
    warning). When Redis resumes, exactly the ones that waited reach the other server."""
    a = serve(narwhal, redis, "--metrics-bind", "127.0.0.1:0", "--pubsub-redis-max-pending", "5")
    b = serve(narwhal, redis)
    url = metrics_url(a)

    async def main():
        (sb,) = await subscribed(b, "news")
        try:
            redis.wait_numsub("narwhal:news", 1)
            wait_metric(url, "narwhal_pubsub_redis_connected", lambda v: v == 1)
            redis.signal(signal.SIGSTOP)
            try:
                # Nothing was published by `a` before: none of its replies is pending.
                await asyncio.to_thread(post, a, "/publish?topic=news&count=8", b"m")
                m = wait_metric(url, "narwhal_pubsub_redis_lost_total", lambda v: v >= 3)
                assert value(m, "narwhal_pubsub_redis_lost_total") == 3
                a.wait_for_log(r"has not answered 5 publications \(--pubsub-redis-max-pending\)")
            finally:
                redis.signal(signal.SIGCONT)
            assert await recv(sb, 5) == [f"m-{i}" for i in range(5)]
            assert await fence(redis, "narwhal:news", [sb]) == [[]]
            assert value(scrape(url), "narwhal_pubsub_redis_lost_total") == 3
            assert value(scrape(url), "narwhal_pubsub_redis_connected") == 1
        finally:
            await close_all([sb])

    asyncio.run(main())
    # Stopping while replies are pending closes the connections cleanly (a sanitizer
    # build would fail the exit status).
    redis.signal(signal.SIGSTOP)
    try:
        post(a, "/publish?topic=news&count=3", b"late")
        assert a.stop() == 0, a.log()
    finally:
        redis.signal(signal.SIGCONT)


def test_password_and_database_and_a_wrong_password(narwhal, tmp_path):
    """AUTH and SELECT after connecting; a refused AUTH is an outage like any other,
    reported with Redis's answer (and without the password), and retried."""
    with redis_server(tmp_path, "--requirepass", "s3cret",
                      cli_args=("--no-auth-warning", "-a", "s3cret")) as redis:
        port = redis.port
        wrong = narwhal(APP, "--pubsub-redis", f"redis://:nope@127.0.0.1:{port}")
        m = wrong.wait_for_log(UNREACHABLE, GUARD)
        assert "AUTH" in m.group(0) and "nope" not in m.group(0), m.group(0)
        assert f"redis://:***@127.0.0.1:{port}" in m.group(0), m.group(0)
        server = serve(narwhal, redis, "--pubsub-redis", f"redis://:s3cret@127.0.0.1:{port}/3")

        async def main():
            (ws,) = await subscribed(server, "news")
            try:
                # Pub/sub channels are not per database: a client on database 0 reaches it.
                redis.wait_numsub("narwhal:news", 1)
                redis.cli("PUBLISH", "narwhal:news", "authed")
                assert await asyncio.wait_for(ws.recv(), GUARD) == "authed"
            finally:
                await close_all([ws])

        asyncio.run(main())
        assert "s3cret" not in server.log()


def test_unix_socket(narwhal, tmp_path):
    sock = tmp_path / "redis.sock"
    with redis_server(tmp_path, "--unixsocket", str(sock), port=0,
                      cli_args=("-s", str(sock))) as redis:
        server = narwhal(APP, "--pubsub-redis", f"unix://{sock}")
        server.wait_for_log(r"pubsub: connected to Redis at unix://", GUARD)

        async def main():
            (ws,) = await subscribed(server, "news")
            try:
                redis.wait_numsub("narwhal:news", 1)
                await asyncio.to_thread(post, server, "/publish?topic=news", b"local")
                assert await asyncio.wait_for(ws.recv(), GUARD) == "local"
                redis.cli("PUBLISH", "narwhal:news", "over-unix")
                assert await asyncio.wait_for(ws.recv(), GUARD) == "over-unix"
            finally:
                await close_all([ws])

        asyncio.run(main())
