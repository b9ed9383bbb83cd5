"""The native health paths: --health-live-path and --health-ready-path are answered by
C++ on the normal listener, without the app and without an admission slot.

Cases: 200 with the JSON detail (GET and HEAD, query ignored, keep-alive), 405 with
Allow for other methods, no access line; a loop blocked past the health threshold ->
live 503, answered while the loop is still stuck; a full admission queue -> ready 503,
live 200; SIGTERM with --timeout-shutdown-delay -> ready 503 on an open keep-alive
connection and on a new one while a slow request in flight still completes.

Apps: apps/overload_apps.py (/hold and /block/gate wait for a file the test creates, so
the test decides how long they hold; nothing waits for a fixed time).
"""

from __future__ import annotations

import json
import re
import time

from rawhttp import TIMESTAMP, RawConnection, exchange, request

APP = "overload_apps:router"
GUARD = 20.0
HEALTH = ("--health-live-path", "/live", "--health-ready-path", "/ready")


def probe(server, path: str, method: str = "GET"):
    return exchange(server.addr, request(method, path, headers=[("Connection", "close")]),
                    method=method, check_closed=False)


def wait_status(server, path: str, status: int, timeout: float = GUARD):
    """Probe `path` until it answers `status`; every probe must get an answer."""
    deadline = time.monotonic() + timeout
    while True:
        resp = probe(server, path)
        if resp.status == status:
            return resp
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still {resp.status} after {timeout}s: {resp.body!r}")
        time.sleep(0.02)  # poll interval


def test_live_and_ready_answer_200_with_detail(narwhal):
    server = narwhal(APP, *HEALTH)
    for path, name in (("/live", "live"), ("/ready?from=balancer", "ready")):
        resp = probe(server, path)
        assert resp.status == 200, resp
        assert resp.header("content-type") == "application/json"
        assert resp.header("cache-control") == "no-store"
        detail = json.loads(resp.body)
        assert detail["probe"] == name and detail["status"] == "ok"
        assert detail["live"] is True and detail["ready"] is True and detail["draining"] is False
        assert detail["pid"] == server.pid
        (loop,) = detail["interpreters"]
        assert loop["interpreter"] == 0 and loop["in_flight"] == 0 and loop["queued"] == 0


def test_head_keep_alive_and_other_methods(narwhal):
    server = narwhal(APP, *HEALTH)
    with RawConnection(server.addr, timeout=GUARD) as conn:
        conn.send(request("HEAD", "/live"))
        head = conn.read_response("HEAD")
        assert head.status == 200 and head.body == b""
        assert int(head.header("content-length")) > 0
        conn.send(request("POST", "/ready", body=b""))
        refused = conn.read_response()
        assert refused.status == 405 and refused.header("allow") == "GET, HEAD"
        conn.send(request("GET", "/ready"))  # the same connection, still open
        assert conn.read_response().status == 200
        conn.send(request("GET", "/hello"))  # and the app behind it
        assert conn.read_response().body == b"hello"


def test_probes_are_not_access_lines(narwhal):
    server = narwhal(APP, *HEALTH)
    assert probe(server, "/live").status == 200
    assert probe(server, "/ready").status == 200
    assert probe(server, "/hello").status == 200  # the control: this one is logged
    server.wait_for_log(r'"GET /hello HTTP/1.1" 200')
    assert server.stop() == 0
    assert not re.search(r'"(GET|HEAD) /(live|ready)', server.log()), server.log()


def test_paths_are_off_by_default(narwhal):
    server = narwhal(APP)
    resp = probe(server, "/live")
    assert resp.status == 200 and resp.body == b"hello"  # the app's


def test_blocked_loop_makes_live_503_while_it_is_stuck(narwhal, tmp_path):
    server = narwhal(APP, *HEALTH, "--io-threads", "1", "--watchdog-threshold", "0.1",
                     "--timeout-worker-healthcheck", "0.5")
    assert probe(server, "/live").status == 200
    gate = tmp_path / "gate"
    blocker = RawConnection(server.addr, timeout=GUARD)
    try:
        blocker.send(request("GET", "/block/gate", headers=[("x-gate", str(gate))]))
        server.wait_for_log(r"overload_apps: blocking")
        resp = wait_status(server, "/live", 503)
        detail = json.loads(resp.body)
        assert detail["live"] is False and detail["ready"] is False
        assert detail["interpreters"][0]["turning"] is False
        assert detail["interpreters"][0]["last_beat_ms"] > 500
        assert probe(server, "/ready").status == 503
        gate.write_text("go")
        assert blocker.read_response().status == 200
    finally:
        gate.write_text("go")
        blocker.close()
    wait_status(server, "/live", 200)


def test_full_admission_queue_makes_ready_503_but_live_200(narwhal, tmp_path):
    server = narwhal(APP, *HEALTH, "--limit-concurrency", "1", "--limit-queue", "0")
    gate = tmp_path / "gate"
    holder = RawConnection(server.addr, timeout=GUARD)
    try:
        holder.send(request("GET", "/hold?tag=a", headers=[("x-gate", str(gate))]))
        server.wait_for_log(r"overload_apps: holding tag=a")
        resp = probe(server, "/ready")
        assert resp.status == 503, resp
        detail = json.loads(resp.body)
        assert detail["live"] is True and detail["ready"] is False
        assert detail["in_flight"] == 1 and detail["interpreters"][0]["admission_full"] is True
        assert probe(server, "/live").status == 200
        gate.write_text("go")
        assert holder.read_response().status == 200
    finally:
        gate.write_text("go")
        holder.close()
    wait_status(server, "/ready", 200)


def test_sigterm_turns_ready_503_during_the_shutdown_delay(narwhal, tmp_path):
    server = narwhal(APP, *HEALTH, "--timeout-shutdown-delay", "30")
    gate = tmp_path / "gate"
    keep = RawConnection(server.addr, timeout=GUARD)
    slow = RawConnection(server.addr, timeout=GUARD)
    try:
        keep.send(request("GET", "/ready"))
        assert keep.read_response().status == 200  # keep-alive: the connection stays open
        slow.send(request("GET", "/hold?tag=slow", headers=[("x-gate", str(gate))]))
        server.wait_for_log(r"overload_apps: holding tag=slow")
        server.signal(15)
        server.wait_for_log(TIMESTAMP + r"INFO: +Shutting down in 30 s")
        # The open keep-alive connection gets an answer, not a close.
        keep.send(request("GET", "/ready"))
        resp = keep.read_response()
        assert resp.status == 503, resp
        detail = json.loads(resp.body)
        assert detail["draining"] is True and detail["live"] is True
        # A new connection is still accepted and served.
        assert probe(server, "/ready").status == 503
        assert probe(server, "/hello").body == b"hello"
        gate.write_text("go")
        assert slow.read_response().body == b"released slow"
    finally:
        gate.write_text("go")
        keep.close()
        slow.close()
    # A second signal ends the delay (the drain then finishes at once: nothing in flight).
    server.signal(15)
    assert server.proc.wait(GUARD) == 0


def test_under_workers_the_worker_answers_for_itself(narwhal):
    server = narwhal(APP, *HEALTH, "--workers", "1")
    worker = int(server.wait_for_log(r"Worker process \[(\d+)\] is ready").group(1))
    resp = wait_status(server, "/ready", 200)
    detail = json.loads(resp.body)
    assert detail["pid"] == worker != server.pid
    assert detail["interpreters"][0]["last_beat_ms"] is not None  # beats for the master too
