"""narwhal.pubsub across worker processes (--workers N without --pubsub-redis): the
worker bus carries a publication made in one worker to the subscribers in every other.

Real binary, real WebSocket clients (`websockets`), real HTTP: sockets are opened until
every worker holds some (each tells its worker's pid), publications are made through
POST /publish on a keep-alive connection whose worker is known (GET /pid first), and
through a socket's "pub:" command. Every wait is on a condition with a generous limit.

Cases: --workers 2, every socket in both workers gets every publication of both, each
publisher's in order, and /metrics' received counter moves by them; a worker killed with
SIGKILL is replaced and the bus links the new worker with the old one both ways; during a
rolling restart (SIGHUP) the draining worker and its replacement are linked both ways;
--workers 3, all three receive (also with the I/O inline, --io-threads 0).

App: apps/pubsub_app.py.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import os
import re
import signal
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from test_pubsub import close_all
from test_workers import ready_pids, wait_workers
from wsclient import Collector, connect

APP = "pubsub_app:app"
GUARD = 30.0  # a failure guard for every wait, never a timing
METRICS_URL = re.compile(r"Prometheus metrics on (http://\S+/metrics)")
BATCH = 100
_batch_numbers = itertools.count()  # every batch's body is different


def bus_directory(pid: int) -> str:
    """The directory of the worker bus, from the socket worker `pid` listens on (the
    kernel shows the name it was bound to, before its rename to <pid>.sock)."""
    bound = re.compile(rf"/narwhal-bus-[^/]+/{pid}\.sock(\.new)?$")
    deadline = time.monotonic() + GUARD
    while True:
        with open("/proc/net/unix") as f:
            for line in f:
                path = line.split()[-1]
                if bound.search(path):
                    return os.path.dirname(path)
        assert time.monotonic() < deadline, f"worker {pid} has no bus socket"
        time.sleep(0.05)  # poll interval


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=GUARD) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                out[sample.name] = sample.value
    return out


def summary(got: list[str]) -> dict[str, int]:
    """How many messages of each batch (or warm-up tag) a socket received."""
    counts: dict[str, int] = {}
    for m in got:
        key = m.rsplit("-", 1)[0] if "-" in m else m.split(":", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


class Sub(Collector):
    """One subscribed WebSocket and the text frames it received."""

    def __init__(self, ws, pid: int) -> None:
        super().__init__(ws, f"socket in worker {pid}",
                         lambda got: f"{len(got)} received: {summary(got)}")
        self.pid = pid


async def open_subs(base: str, topics: str, pids: set[int], stack: list,
                    limit: int = 300) -> dict[int, list[Sub]]:
    """Opens subscribed sockets until each of `pids` holds at least one."""
    by_pid: dict[int, list[Sub]] = {}
    for _ in range(limit):
        ws = await connect(f"{base}/ws?topics={topics}&ready=1")
        stack.append(ws)
        assert await asyncio.wait_for(ws.recv(), GUARD) == "ready"
        await ws.send("pid")
        answer = await asyncio.wait_for(ws.recv(), GUARD)
        assert answer.startswith("pid:"), answer
        pid = int(answer[4:])
        by_pid.setdefault(pid, []).append(Sub(ws, pid))
        if pids <= set(by_pid):
            return by_pid
    raise AssertionError(f"{limit} sockets and not every worker: {sorted(by_pid)} of {pids}")


def publish_batch(server, pid_wanted: int, topic: str) -> str:
    """POST /publish (BATCH messages) on a keep-alive connection to worker `pid_wanted`,
    found by asking each new connection's worker first. Returns the body: the messages are
    "<body>-<i>"."""
    for _ in range(1000):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=GUARD)
        try:
            conn.request("GET", "/pid")
            pid = int(conn.getresponse().read())
            if pid != pid_wanted:
                continue
            body = f"{pid}.{next(_batch_numbers)}"
            conn.request("POST", f"/publish?topic={topic}&count={BATCH}", body=body)
            response = conn.getresponse()
            assert response.status == 200 and response.read() == f"published {BATCH}".encode()
            return body
        finally:
            conn.close()
    raise AssertionError(f"no connection reached worker {pid_wanted}")


def in_order(got: list[str], body: str) -> bool:
    """All BATCH messages of `body`, each once, in order (other topics' in between)."""
    mine = [m for m in got if m.startswith(body + "-")]
    return mine == [f"{body}-{i}" for i in range(BATCH)]


async def cross_until_received(sender: Sub, receiver: Sub, topic: str, tag: str) -> None:
    """Publishes from `sender`'s worker until `receiver` (in another worker) got one: the
    bus connects in the background, so the first ones may find it not connected yet. Then
    waits for the last one sent, so none is still on its way when this returns."""
    deadline = time.monotonic() + GUARD
    n = 0
    while not any(m.startswith(f"{tag}:") for m in receiver.got):
        assert time.monotonic() < deadline, f"{tag}: worker {sender.pid} -> {receiver.pid}"
        await sender.ws.send(f"pub:{topic}:{tag}:{n}")
        n += 1
        try:
            await asyncio.wait_for(receiver.changed.wait(), 0.2)  # then publish again
        except asyncio.TimeoutError:
            pass
        receiver.changed.clear()
    await receiver.wait(lambda got: f"{tag}:{n - 1}" in got, f"{tag}: the last one")


def start(narwhal, workers: int, *args: str):
    server = narwhal(APP, "--workers", str(workers), *args)
    return server, set(wait_workers(server, workers, GUARD))


def test_two_workers_every_socket_gets_every_publication_and_a_killed_worker_rejoins(narwhal):
    server, pids = start(narwhal, 2, "--metrics-bind", "127.0.0.1:0")
    url = server.wait_for_log(METRICS_URL.pattern).group(1)
    base = f"ws://{server.host}:{server.port}"
    first, second = sorted(pids)
    # The master's private directory, with a socket per worker.
    directory = bus_directory(first)
    assert bus_directory(second) == directory
    assert os.stat(directory).st_mode & 0o777 == 0o700

    async def scenario() -> None:
        stack: list = []
        try:
            subs = await open_subs(base, "T,warm", pids, stack)
            # Both directions linked before the counted publications.
            await cross_until_received(subs[first][0], subs[second][0], "warm", "w1")
            await cross_until_received(subs[second][0], subs[first][0], "warm", "w2")
            before = scrape(url)

            # Two POSTs in each worker.
            batches = [await asyncio.to_thread(publish_batch, server, pid, "T")
                       for pid in (first, second, first, second)]
            everyone = [s for group in subs.values() for s in group]
            for sub in everyone:
                for body in batches:
                    await sub.wait(lambda got, b=body: in_order(got, b), f"batch {body}")
            total = BATCH * len(batches)
            deadline = time.monotonic() + GUARD
            while True:
                after = scrape(url)
                received = after["narwhal_pubsub_received_total"] - before[
                    "narwhal_pubsub_received_total"]
                if received >= total or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)  # poll interval
            # Each publication is received once, by the other worker.
            assert received == total, (received, total)
            assert after["narwhal_pubsub_published_total"] - before[
                "narwhal_pubsub_published_total"] == total
            assert after["narwhal_pubsub_bus_lost_total"] == before[
                "narwhal_pubsub_bus_lost_total"]

            # A worker killed: its replacement joins the bus, both ways.
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + GUARD
            while not (set(ready_pids(server)) - pids):
                assert time.monotonic() < deadline, server.log()
                await asyncio.sleep(0.05)  # poll interval
            (third,) = set(ready_pids(server)) - pids
            # The master removed the killed worker's name when it reaped it.
            assert bus_directory(third) == directory
            assert f"{first}.sock" not in os.listdir(directory)
            fresh = await open_subs(base, "T,again", {second, third}, stack)
            await cross_until_received(fresh[third][0], fresh[second][0], "again", "new")
            await cross_until_received(fresh[second][0], fresh[third][0], "again", "old")
            # And the old worker's earlier sockets hear the new worker too.
            await cross_until_received(fresh[third][0], subs[second][0], "T", "new2")
        finally:
            await close_all(stack)

    asyncio.run(scenario())
    assert server.proc.poll() is None, server.log()
    # A clean stop leaves nothing behind.
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
    assert not os.path.exists(directory)


@pytest.mark.parametrize("io_threads", ["auto", "0"])
def test_three_workers_all_receive(narwhal, io_threads):
    """Also with --io-threads 0, where the bus runs on the interpreter's thread between
    loop iterations."""
    server, pids = start(narwhal, 3, "--io-threads", io_threads)
    base = f"ws://{server.host}:{server.port}"

    async def scenario() -> None:
        stack: list = []
        try:
            subs = await open_subs(base, "T,warm", pids, stack)
            order = sorted(pids)
            # Every worker reaches every other before the counted publications.
            for a in order:
                for b in order:
                    if a != b:
                        await cross_until_received(subs[a][0], subs[b][0], "warm", f"w{a}.{b}")
            batches = [await asyncio.to_thread(publish_batch, server, pid, "T")
                       for pid in order]
            for group in subs.values():
                for sub in group:
                    for body in batches:
                        await sub.wait(lambda got, b=body: in_order(got, b), f"batch {body}")
        finally:
            await close_all(stack)

    asyncio.run(scenario())


def test_rolling_restart_links_the_draining_worker_with_its_replacement(narwhal):
    """SIGHUP: each new worker starts before the one it replaces drains; while it drains,
    its sockets stay open (--timeout-ws-drain) and still hear the new worker, and back."""
    server, pids = start(narwhal, 2, "--timeout-ws-drain", "60")
    base = f"ws://{server.host}:{server.port}"
    step = re.compile(r"Rolling restart 1/2: worker process \[(\d+)\] replaced by \[(\d+)\]")

    async def scenario() -> None:
        stack: list = []
        try:
            subs = await open_subs(base, "T", pids, stack)
            server.signal(signal.SIGHUP)
            m = await asyncio.to_thread(server.wait_for_log, step.pattern, GUARD)
            old, new = int(m.group(1)), int(m.group(2))
            # The old worker no longer accepts: new sockets reach the others.
            fresh = await open_subs(base, "T", {new}, stack)
            await cross_until_received(fresh[new][0], subs[old][0], "T", "to-old")
            await cross_until_received(subs[old][0], fresh[new][0], "T", "to-new")
        finally:
            await close_all(stack)  # lets the draining worker finish

    asyncio.run(scenario())
    assert server.stop(signal.SIGTERM, timeout=60) == 0, server.log()
