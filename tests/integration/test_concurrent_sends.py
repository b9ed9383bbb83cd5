"""Several tasks of one request `await send()` at once on one connection.

Under backpressure each `send` parks until the connection drains; parked senders queue
in call order, every one completes once its message is accepted under the water marks,
and a disconnect fails all of them. Apps: apps/concurrent_send_apps.py.

The client makes the queue fill for certain rather than by timing: it reads the first
20 messages, then stops reading (a `websockets` client with max_queue=1 and a small read
limit, so the socket fills) until the app reports that every sender is parked inside
`send()` at the same moment; only then does it read the rest, or vanish.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
import signal
import struct
import subprocess
import urllib.parse

import pytest

from conftest import serving
from rawhttp import wait_for_file
import wsclient

APP = "concurrent_send_apps:app"
GUARD = 60.0  # failure guard for every wait: tens of MiB through a Python client on a busy machine
TAG = struct.Struct(">II")  # (sender, seq), as the app packs it
SIZE = 64 * 1024
COUNT = 200
READ_FIRST = 20


@pytest.fixture(scope="module")
def server():
    yield from serving(APP)


def ws_url(server, **params) -> str:
    return f"ws://{server.host}:{server.port}/ws?{urllib.parse.urlencode(params)}"


# The legacy client (websockets < 13) also buffers up to `read_limit` bytes of frames.
_SMALL_READS = {"read_limit": SIZE} if "read_limit" in inspect.signature(wsclient._connect).parameters else {}


def connect(url: str, close_timeout: float = GUARD):
    # max_queue=1 and small reads: once the test stops calling recv(), the client stops
    # reading the socket and the server's outbound queue fills.
    return wsclient.connect(url, max_queue=1, max_size=2 * SIZE, ping_interval=None,
                            open_timeout=GUARD, close_timeout=close_timeout, **_SMALL_READS)


async def wait_for_path(path, timeout: float = GUARD) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        if loop.time() > deadline:
            raise AssertionError(f"the app never reported all senders parked ({path})")
        await asyncio.sleep(0.01)  # poll interval


def split(messages: list[bytes], size: int = SIZE) -> dict[int, list[int]]:
    """Per sender, the sequence numbers in arrival order; checks each message's length."""
    seqs: dict[int, list[int]] = {}
    for m in messages:
        assert len(m) == size, f"message of {len(m)} bytes, expected {size}"
        sender, seq = TAG.unpack_from(m)
        seqs.setdefault(sender, []).append(seq)
    return seqs


async def read_all_after_pause(url: str, parked) -> tuple[list[bytes], dict]:
    """Read 20 messages, pause until every sender is parked, then read to the final report."""
    got: list[bytes] = []
    async with connect(url) as ws:
        for _ in range(READ_FIRST):
            got.append(await asyncio.wait_for(ws.recv(), GUARD))
        await wait_for_path(parked)
        while True:
            m = await asyncio.wait_for(ws.recv(), GUARD)
            if isinstance(m, str):
                return got, json.loads(m)
            got.append(m)


@pytest.mark.parametrize("n", [2, 8])
def test_parked_websocket_senders_all_finish_in_order(server, tmp_path, n):
    parked = tmp_path / "parked"
    url = ws_url(server, n=n, count=COUNT, size=SIZE, parked=parked)
    got, report = asyncio.run(read_all_after_pause(url, parked))
    assert report["parked"] is True, report
    assert report["senders"] == ["ok"] * n, report
    seqs = split(got)
    assert sorted(seqs) == list(range(n))
    for sender, order in seqs.items():
        assert order == list(range(COUNT)), f"sender {sender}: {len(order)} messages, order {order[:10]}..."
    assert len(got) == n * COUNT


def test_cancelled_parked_sender_leaves_the_others_running(server, tmp_path):
    n = 4
    parked = tmp_path / "parked"
    url = ws_url(server, n=n, count=COUNT, size=SIZE, parked=parked, cancel=1)
    got, report = asyncio.run(read_all_after_pause(url, parked))
    assert report["senders"] == ["cancelled"] + ["ok"] * (n - 1), report
    seqs = split(got)
    for sender in range(1, n):
        assert seqs[sender] == list(range(COUNT)), f"sender {sender} lost or reordered messages"
    # Sender 0 stopped inside one send(): what it sent before arrives, in order (the
    # cancelled message itself may have been accepted already).
    cancelled = seqs.get(0, [])
    assert cancelled == list(range(len(cancelled)))
    assert report["sent"][0] <= len(cancelled) <= report["sent"][0] + 1, (report["sent"], len(cancelled))
    assert report["sent"][0] < COUNT


@pytest.mark.parametrize("n", [2, 8])
def test_client_vanishing_fails_every_parked_sender(server, tmp_path, n):
    parked, report_path = tmp_path / "parked", tmp_path / "report.json"
    url = ws_url(server, n=n, count=COUNT, size=SIZE, parked=parked, report=report_path)

    async def vanish() -> None:
        # The client's own closing handshake after the abort cannot complete: not waited for.
        async with connect(url, close_timeout=0.1) as ws:
            for _ in range(READ_FIRST):
                await asyncio.wait_for(ws.recv(), GUARD)
            await wait_for_path(parked)
            ws.transport.abort()  # gone without a close frame

    asyncio.run(vanish())
    report = json.loads(wait_for_file(str(report_path), timeout=GUARD))
    assert report["parked"] is True, report
    assert len(report["senders"]) == n
    for result in report["senders"]:
        assert isinstance(result, dict) and result["is_oserror"] and result["is_client_disconnected"], report
    assert all(sent < COUNT for sent in report["sent"]), report


def test_http_body_from_four_tasks_arrives_whole(server, tmp_path):
    n, count = 4, 64
    curl = shutil.which("curl")
    assert curl, "curl is installed by deploy/install-deps.sh"
    out, report_path = tmp_path / "body", tmp_path / "report.json"
    url = f"{server.url}/stream?{urllib.parse.urlencode(dict(n=n, count=count, size=SIZE, report=report_path))}"
    done = subprocess.run([curl, "-sS", "--fail", "--max-time", str(GUARD), "-o", str(out), url],
                          capture_output=True, text=True, timeout=GUARD + 10)
    assert done.returncode == 0, f"curl: {done.returncode} {done.stderr} after {out.stat().st_size} bytes"
    body = out.read_bytes()
    assert len(body) == n * count * SIZE == 16 * 1024 * 1024
    seqs = split([body[i:i + SIZE] for i in range(0, len(body), SIZE)])
    assert seqs == {sender: list(range(count)) for sender in range(n)}
    assert json.loads(wait_for_file(str(report_path), timeout=GUARD))["senders"] == ["ok"] * n
