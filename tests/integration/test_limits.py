"""The bridge's own knobs at their limits: --read-window, --send-high-water /
--send-low-water, --inbox-capacity and --inbox-batch."""

from __future__ import annotations

import concurrent.futures
import json
import socket
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


def _sent_to_stalled_reader(server, tmp_path, name: str, until_mib: int | None = None) -> int:
    """Bytes the app got through send() to a client that reads nothing: for one second
    (the stall is the behaviour under test), or, with `until_mib`, until the app has
    logged that many MiB sent (a condition, however slow the machine)."""
    report = tmp_path / f"{name}.json"
    conn = RawConnection(server.addr)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.send(request("GET", f"/download?total={256 * MIB}&progress=1&tag={name}",
                      headers=[("x-report", str(report))]))
    if until_mib is None:
        time.sleep(1.0)  # the client stops reading: what does the server let through?
    else:
        server.wait_for_log(rf"overload_apps: sent {until_mib} MiB tag={name}\b", timeout=60)
    conn.close()
    deadline = time.monotonic() + 20
    while True:  # the report is rewritten once receive() answered
        data = json.loads(wait_for_file(report))
        if data.get("receive") is not None or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # poll interval
    assert data.get("exc_type") is not None, f"the app finished a 256 MiB download to a stalled client: {data}"
    return data["sent"]


def test_send_high_water_bounds_what_a_stalled_reader_lets_through(narwhal, tmp_path):
    """`await send()` waits above --send-high-water: by default a stalled client lets
    through little more than the kernel's buffers; with a 32 MiB mark, 32 MiB more."""
    small = _sent_to_stalled_reader(narwhal(APP), tmp_path, "default")
    assert small < 16 * MIB, f"default water marks let {small / MIB:.1f} MiB through"
    big = _sent_to_stalled_reader(
        narwhal(APP, "--send-high-water", str(32 * MIB), "--send-low-water", str(MIB)),
        tmp_path, "big", until_mib=32)
    assert big >= 32 * MIB, f"a 32 MiB high-water mark let only {big / MIB:.1f} MiB through"


def test_inbox_capacity_sheds_when_the_loop_cannot_take_requests(narwhal, tmp_path):
    """--inbox-capacity 1: while the loop is blocked, one new request waits in the inbox
    and the others are answered 503 by the I/O thread at once. The loop stays blocked
    until the test opens the gate, so "while" does not depend on timing."""
    # An I/O thread of its own (not the default's choice on every machine): with
    # --io-threads 0 the blocked loop's thread is the one that would answer.
    server = narwhal(APP, "--inbox-capacity", "1", "--limit-concurrency", "0", "--io-threads", "1")
    gate = tmp_path / "gate"
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        try:
            blocker = pool.submit(httpx.get, f"{server.url}/block/gate?tag=inbox",
                                  headers={"x-gate": str(gate)}, timeout=60)
            server.wait_for_log(r"overload_apps: blocking tag=inbox\b")
            burst = [pool.submit(exchange, server.addr, request("GET", "/"), check_closed=False)
                     for _ in range(4)]
            # Three are shed while the loop is still blocked; the fourth waits in the inbox.
            done, waiting = set(), set(burst)
            while len(done) < 3:
                more, waiting = concurrent.futures.wait(waiting, timeout=60,
                                                        return_when=concurrent.futures.FIRST_COMPLETED)
                assert more, f"only {len(done)} answers within 60 s while the loop was blocked"
                done |= more
            assert sorted(f.result().status for f in done) == [503] * 3
            assert len(waiting) == 1, "the request in the inbox was answered while the loop was blocked"
        finally:
            gate.touch()
        statuses = sorted(f.result().status for f in burst)
        assert blocker.result().status_code == 200
    assert statuses == [200, 503, 503, 503], statuses


def test_inbox_batch_of_one_still_serves_a_burst(narwhal):
    """--inbox-batch 1: the drain takes one event per turn and reschedules itself; a
    burst of 64 concurrent requests is still served completely."""
    server = narwhal(RAW, "--inbox-batch", "1")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: httpx.get(f"{server.url}/hello", timeout=30).status_code,
                                range(64)))
    assert results == [200] * 64
