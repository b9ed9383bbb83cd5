"""The bridge's own knobs at their limits: --read-window, --send-high-water /
--send-low-water, --inbox-capacity and --inbox-batch."""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx

from rawhttp import RawConnection, exchange, request, wait_for_file

APP = "overload_apps:router"
RAW = "raw_apps:router"
MIB = 1 << 20


def test_read_window_bounds_each_body_chunk(narwhal):
    """--read-window 4096: the app gets a 100 KB body in pieces of at most 4 KiB."""
    server = narwhal(RAW, "--read-window", "4096")
    body = bytes(range(256)) * 400
    resp = exchange(server.addr, request("POST", "/echo", body=body), check_closed=False)
    assert resp.status == 200 and resp.body == body
    assert int(resp.header("x-chunks")) >= len(body) // 4096, resp.headers


def _sent_to_stalled_reader(server, tmp_path, name: str) -> int:
    """Bytes the app got through send() while the client read nothing for a second."""
    report = tmp_path / f"{name}.json"
    conn = RawConnection(server.addr, timeout=10.0)
    conn.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
    conn.send(request("GET", f"/download?total={256 * MIB}", headers=[("x-report", str(report))]))
    time.sleep(1.0)  # the behaviour under test is what a stall lets through
    conn.close()
    wait_for_file(report)
    for _ in range(100):  # the report is rewritten once receive() answered
        data = json.loads(report.read_text())
        if data.get("receive") is not None:
            break
        time.sleep(0.05)
    return data["sent"]


def test_send_high_water_bounds_what_a_stalled_reader_lets_through(narwhal, tmp_path):
    """`await send()` waits above --send-high-water: by default a stalled client lets
    through little more than the kernel's buffers; with a 32 MiB mark, 32 MiB more."""
    small = _sent_to_stalled_reader(narwhal(APP), tmp_path, "default")
    big = _sent_to_stalled_reader(
        narwhal(APP, "--send-high-water", str(32 * MIB), "--send-low-water", str(MIB)),
        tmp_path, "big")
    assert small < 16 * MIB, f"default water marks let {small / MIB:.1f} MiB through"
    assert big >= 32 * MIB, f"a 32 MiB high-water mark let only {big / MIB:.1f} MiB through"


def test_inbox_capacity_sheds_when_the_loop_cannot_take_requests(narwhal):
    """--inbox-capacity 1: while the loop is blocked, one new request waits in the inbox
    and the others are answered 503 by the I/O thread at once."""
    server = narwhal(APP, "--inbox-capacity", "1", "--limit-concurrency", "0")
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        blocker = pool.submit(httpx.get, f"{server.url}/block/sleep?s=1.5", timeout=10)
        server.wait_for_log(r"event loop blocked", timeout=10)
        t0 = time.monotonic()
        burst = [pool.submit(exchange, server.addr, request("GET", "/"), check_closed=False)
                 for _ in range(4)]
        statuses = sorted(f.result().status for f in burst)
        assert blocker.result().status_code == 200
    assert statuses.count(200) == 1 and statuses.count(503) == 3, statuses
    assert time.monotonic() - t0 < 5.0


def test_inbox_batch_of_one_still_serves_a_burst(narwhal):
    """--inbox-batch 1: the drain takes one event per turn and reschedules itself; a
    burst of 64 concurrent requests is still served completely."""
    server = narwhal(RAW, "--inbox-batch", "1")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: httpx.get(f"{server.url}/hello", timeout=10).status_code,
                                range(64)))
    assert results == [200] * 64
