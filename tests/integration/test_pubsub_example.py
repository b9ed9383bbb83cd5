"""examples/pubsub_chat, the Starlette chat room on narwhal.pubsub, run as its README
says: the real binary with `--venv` (the pinned Starlette) and `--app-dir
examples/pubsub_chat`, talked to by real WebSocket clients (`websockets`) and httpx.

Cases: two clients in room "a" and one in room "b" - each join, chat line, HTTP
announcement and leave reaches exactly the clients of its room, in order (every client
reads its frames one by one, so a frame that should not be there fails the next
expectation); the page at / and the announce's bad request; --workers 2, where every
one of N sockets in a room gets an announcement and every socket's chat line, whichever
worker holds it; and the same room scenario under uvicorn, where the app falls back to
its in-process sockets.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import signal
import subprocess
import threading
import time
from urllib.parse import quote

import httpx
import pytest

from conftest import ROOT, Server, _pump
from test_workers import wait_workers
from venv_util import require_venv, serve_pypi
import wsclient

EXAMPLE = ROOT / "examples" / "pubsub_chat"
APP = "app:app"
GUARD = 30.0  # a failure guard for every wait, never a timing
UVICORN_READY = re.compile(r"Uvicorn running on http://(?P<host>[^:]+):(?P<port>\d+)")


@pytest.fixture(scope="module")
def server():
    yield from serve_pypi(APP, app_dir=EXAMPLE)


class Member:
    """One chat client: a socket in a room, read frame by frame."""

    def __init__(self, ws, name: str) -> None:
        self.ws, self.name = ws, name

    async def expect(self, *lines: str) -> None:
        for line in lines:
            got = await asyncio.wait_for(self.ws.recv(), GUARD)
            assert got == line, f"{self.name} got {got!r}, expected {line!r}"

    async def say(self, text: str) -> None:
        await self.ws.send(text)


async def join(base: str, room: str, name: str, stack: list) -> Member:
    ws = await wsclient.connect(f"{base}/ws/{quote(room)}?name={quote(name)}")
    stack.append(ws)
    return Member(ws, name)


async def close_all(stack: list) -> None:
    for ws in stack:
        await ws.close()


async def room_scenario(host: str, port: int) -> None:
    base = f"ws://{host}:{port}"
    stack: list = []
    async with httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=GUARD) as http:

        async def announce(room: str, text: str) -> None:
            r = await http.get(f"/rooms/{room}/announce", params={"text": text})
            assert (r.status_code, r.text) == (200, f"announced to {room}\n")

        try:
            # A socket is in its room before its own "joined" goes out: it hears it.
            alice = await join(base, "a", "alice", stack)
            await alice.expect("alice joined")
            bob = await join(base, "a", "bob", stack)
            await bob.expect("bob joined")
            await alice.expect("bob joined")
            carol = await join(base, "b", "carol", stack)
            await carol.expect("carol joined")

            # Chat lines reach the room, the speaker included.
            await alice.say("hi bob")
            await alice.expect("alice: hi bob")
            await bob.expect("alice: hi bob")
            await bob.say("hi alice")
            await bob.expect("bob: hi alice")
            await alice.expect("bob: hi alice")
            await carol.say("anyone in b?")
            await carol.expect("carol: anyone in b?")

            # An HTTP handler publishes to one room.
            await announce("a", "news for a")
            await alice.expect("news for a")
            await bob.expect("news for a")
            await announce("b", "news for b")
            # Nothing of room a was delivered to carol before her own room's news.
            await carol.expect("news for b")

            # A leave is published after the socket closed, to the room it was in.
            await bob.ws.close()
            await alice.expect("bob left")
            await alice.say("bye")
            await alice.expect("alice: bye")
            await carol.say("still here")
            await carol.expect("carol: still here")  # neither "bob left" nor "alice: bye"
            await carol.ws.close()
            await announce("a", "last for a")
            await alice.expect("last for a")  # not "carol left"
        finally:
            await close_all(stack)


def test_rooms_joins_chat_announcements_and_leaves(server):
    asyncio.run(room_scenario(server.host, server.port))


def test_page_and_bad_announce(server):
    with httpx.Client(base_url=server.url, timeout=GUARD) as c:
        page = c.get("/")
        bad = c.get("/rooms/a/announce")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '"/ws/"' in page.text  # the client opens /ws/<room>?name=...
    assert bad.status_code == 400


# ------------------------------------------------------------------------ --workers 2

N_SOCKETS = 8


class Listener(wsclient.Collector):
    """A socket in the room whose frames are collected in the background."""


async def until_everyone_got(publish, everyone: list[Listener], prefix: str) -> None:
    """Calls publish("warm-<count>") until every socket got a frame starting with `prefix`.
    A new worker links to the others in the background, so the first publications may not
    cross yet; the checks after this one publish once and expect every socket to get it."""
    deadline = time.monotonic() + GUARD
    n = 0
    while not all(any(m.startswith(prefix) for m in s.got) for s in everyone):
        missing = [s.name for s in everyone if not any(m.startswith(prefix) for m in s.got)]
        assert time.monotonic() < deadline, f"{prefix}: never reached {missing}"
        await publish(f"warm-{n}")
        n += 1
        waits = [asyncio.ensure_future(s.changed.wait()) for s in everyone]
        await asyncio.wait(waits, timeout=0.2)  # then publish again
        for w in waits:
            w.cancel()
        for s in everyone:
            s.changed.clear()


def test_two_workers_every_socket_in_the_room_gets_every_message(narwhal):
    server = narwhal(APP, "--venv", str(require_venv()), "--workers", "2", app_dir=EXAMPLE)
    wait_workers(server, 2, GUARD)
    base = f"ws://{server.host}:{server.port}"
    # One keep-alive connection, so every announcement comes from the same worker.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=GUARD)

    def announce_sync(text: str) -> None:
        conn.request("GET", f"/rooms/w/announce?text={quote(text)}")
        r = conn.getresponse()
        assert (r.status, r.read()) == (200, b"announced to w\n")

    async def announce(text: str) -> None:
        await asyncio.to_thread(announce_sync, text)

    async def scenario() -> None:
        stack: list = []
        try:
            # The workers accept from one listening socket: connections spread over both.
            everyone = []
            for i in range(N_SOCKETS):
                ws = await wsclient.connect(f"{base}/ws/w?name=s{i}")
                stack.append(ws)
                everyone.append(Listener(ws, f"s{i}"))
                await everyone[-1].wait(lambda got, i=i: f"s{i} joined" in got, "its own join")

            await announce("warm-up")  # opens the connection
            sock = conn.sock
            await until_everyone_got(announce, everyone, "warm-")
            await announce("hello, room w")
            for s in everyone:
                await s.wait(lambda got: "hello, room w" in got, "the announcement")
            assert conn.sock is sock  # all of them from one worker, the warmed-up one

            # Each socket's line reaches every socket, whichever worker holds either.
            for s in everyone:
                async def say(text: str, s=s) -> None:
                    await s.ws.send(text)
                await until_everyone_got(say, everyone, f"{s.name}: warm-")
            for s in everyone:
                await s.ws.send("hello")
            for s in everyone:
                for t in everyone:
                    await s.wait(lambda got, t=t: f"{t.name}: hello" in got, f"{t.name}'s hello")
            for s in everyone:  # each publication arrives once
                assert s.got.count("hello, room w") == 1, s.got
                for t in everyone:
                    assert s.got.count(f"{t.name}: hello") == 1, (t.name, s.got)
        finally:
            conn.close()
            await close_all(stack)

    asyncio.run(scenario())
    assert server.proc.poll() is None, server.log()


# -------------------------------------------------------------- the uvicorn fallback

@pytest.fixture
def uvicorn_server():
    """The same app under uvicorn from the pinned venv, where narwhal.pubsub is absent."""
    venv = require_venv()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARWHAL")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.Popen(
        [str(venv / "bin" / "python"), "-m", "uvicorn", APP, "--app-dir", str(EXAMPLE),
         "--host", "127.0.0.1", "--port", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    server = Server(proc, None, None)
    server._reader = threading.Thread(target=_pump, args=(server, proc.stdout), daemon=True)
    server._reader.start()
    try:
        m = server.wait_for_log(UVICORN_READY.pattern, 60)
        server.host, server.port = m.group("host"), int(m.group("port"))
        yield server
    finally:
        server.stop(signal.SIGTERM)


def test_same_rooms_under_uvicorn_through_the_fallback(uvicorn_server):
    asyncio.run(room_scenario(uvicorn_server.host, uvicorn_server.port))
