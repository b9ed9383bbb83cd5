"""Cancel scopes (DESIGN.md section 5).

* client disconnect: a pending receive() returns http.disconnect at once; an app still
  running --timeout-disconnect-grace later is cancelled (CancelledError at its await,
  its `finally` runs), logged with `cancelled`, the method and the path;
* --timeout-request: the task is cancelled; 504 if the response has not started, else
  the connection is aborted; logged with method, path and `(id N, request id X)`;
* level-triggered: an app that swallows CancelledError is cancelled again every
  --timeout-cancel-grace and abandoned after the 3rd time (connection closed, log
  `abandoned` with the request and a stack naming the app's file);
* spawned tasks still pending --timeout-orphan-tasks after their request, and task
  exceptions never retrieved, are reported with the spawning request;
* graceful shutdown: an in-flight keep-alive request is answered with
  `connection: close`; what is left after --timeout-graceful-shutdown is cancelled
  (level-triggered), then lifespan shutdown runs and the exit status is 0.

What the app saw comes back through its `x-report` file (apps/overload_apps.py).
Small flag values keep the durations short. Durations are checked from below only (the
server must not act before its timeout; a busy machine can only make it later); that
it acts at all is a wait with a generous guard (GUARD), chosen below any default the
flag could be confused with.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

from rawhttp import NoResponse, RawConnection, assert_alive, log_records, request, server_stats

APP = "overload_apps:router"
GUARD = 20.0


# --- helpers -----------------------------------------------------------------------

def read_report(path: Path, pred=lambda r: True, timeout: float = GUARD) -> tuple[dict, float]:
    """(report, monotonic time first seen satisfying `pred`)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if path.exists():
            try:
                last = json.loads(path.read_text())
            except ValueError:
                last = None
            if last is not None and pred(last):
                return last, time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"app report {path} never satisfied the condition within {timeout}s; last: {last}")


def wait_record(server, needle: str, *must: str, timeout: float = GUARD) -> str:
    """Wait for a log record whose first line matches the regex `needle` and whose
    text (with its continuation lines) contains all of `must`."""
    deadline = time.monotonic() + timeout
    rx = re.compile(needle)
    while True:
        for rec in log_records(server.log(), ""):
            if rx.search(rec.split("\n", 1)[0]) and all(m in rec for m in must):
                return rec
        if time.monotonic() > deadline or server.proc.poll() is not None:
            raise AssertionError(f"no log record with {needle!r} mentioning {must} within {timeout}s:\n{server.log()}")
        time.sleep(0.02)


def send_req(server, target: str, report: Path | None = None, gate: Path | None = None,
             timeout: float = GUARD, extra: list[tuple[str, str]] | None = None) -> RawConnection:
    headers = list(extra or [])
    if report is not None:
        headers.append(("x-report", str(report)))
    if gate is not None:
        headers.append(("x-gate", str(gate)))
    conn = RawConnection(server.addr, timeout)
    conn.send(request("GET", target, headers=headers))
    return conn


def wait_exit(server, timeout: float) -> int:
    try:
        server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {timeout}s after SIGTERM:\n{server.log()}")
    return server.stop()


# --- client disconnect ---------------------------------------------------------------

def test_pending_receive_returns_disconnect_at_once(narwhal, tmp_path):
    # "At once" means: not through the cancellation that follows the grace period. With a
    # 60 s grace, an http.disconnect seen within the guard (and no CancelledError) can
    # only come from receive() itself.
    server = narwhal(APP, "--timeout-disconnect-grace", "60")
    report = tmp_path / "wait.json"
    conn = send_req(server, "/wait-disconnect?tag=w", report)
    server.wait_for_log(r"overload_apps: waiting tag=w\b")
    conn.close()
    seen, _ = read_report(report)
    assert seen == {"type": "http.disconnect", "cancelled": False}, seen
    assert_alive(server.addr)


def test_app_ignoring_disconnect_is_cancelled_after_grace(narwhal, tmp_path):
    server = narwhal(APP, "--timeout-disconnect-grace", "0.5")
    report = tmp_path / "ignore.json"
    conn = send_req(server, "/ignore-disconnect?tag=ign", report)
    server.wait_for_log(r"overload_apps: sleeping tag=ign\b")
    closed_at = time.monotonic()
    conn.close()
    seen, at = read_report(report)
    assert seen["cancelled"] is True, f"the app was not cancelled: {seen}"
    assert seen["finally"] is True and seen["completed"] is False, seen
    waited = at - closed_at
    assert waited >= 0.45, f"cancelled {waited:.2f}s after the disconnect, before the 0.5 s grace"
    wait_record(server, "cancelled", "GET", "/ignore-disconnect")
    assert server_stats(server)["cancelled"] >= 1
    assert_alive(server.addr)


# --- --timeout-request -----------------------------------------------------------------

def test_request_deadline_before_response_gives_504(narwhal, tmp_path):
    server = narwhal(APP, "--timeout-request", "0.5")
    report = tmp_path / "deadline.json"
    started = time.monotonic()
    conn = send_req(server, "/ignore-disconnect?tag=dl&s=30", report)
    resp = conn.read_response()
    elapsed = time.monotonic() - started
    assert resp.status == 504, f"{resp.status} {resp.body!r}"
    assert elapsed >= 0.45, f"504 after {elapsed:.2f}s, before the 0.5 s --timeout-request"
    seen, _ = read_report(report)
    assert seen["cancelled"] is True and seen["finally"] is True, seen
    wait_record(server, r"\(id \d+, request id [0-9a-f]{32}\)", "GET", "/ignore-disconnect")
    conn.close()
    assert_alive(server.addr)


def test_request_deadline_after_response_started_aborts_connection(narwhal, tmp_path):
    server = narwhal(APP, "--timeout-request", "0.5")
    report = tmp_path / "deadline.json"
    started = time.monotonic()
    conn = send_req(server, "/start-then-sleep?tag=dl2&s=30", report)
    resp = conn.read_response()  # reads until the server closes (or 10 s)
    elapsed = time.monotonic() - started
    assert resp.status == 200
    assert resp.body.startswith(b"first part\n")
    assert not resp.complete, f"response completed although the deadline passed: {resp.raw_body!r}"
    assert b"late part" not in resp.body
    assert conn.eof, "connection still open after the deadline"
    assert elapsed >= 0.45, f"connection closed after {elapsed:.2f}s, before the 0.5 s --timeout-request"
    seen, _ = read_report(report)
    assert seen["cancelled"] is True and seen["finally"] is True, seen
    wait_record(server, r"\(id \d+, request id [0-9a-f]{32}\)", "GET", "/start-then-sleep")
    conn.close()


# --- level-triggered cancellation ------------------------------------------------------------

def test_task_swallowing_cancellation_is_cancelled_again_then_abandoned(narwhal, tmp_path):
    server = narwhal(APP, "--timeout-request", "0.3", "--timeout-cancel-grace", "0.3")
    report, gate = tmp_path / "stubborn.json", tmp_path / "gate"
    conn = send_req(server, "/stubborn?tag=st", report, gate)
    try:
        server.wait_for_log(r"overload_apps: stubborn tag=st\b")
        rec = wait_record(server, "abandoned", "GET", "/stubborn")
        assert 'File "' in rec and "overload_apps.py" in rec, f"abandoned report without the app's stack:\n{rec}"
        seen, _ = read_report(report, lambda r: len(r.get("cancels", [])) >= 3)
        cancels = seen["cancels"]
        assert len(cancels) == 3, f"expected exactly 3 cancellations before abandoning, got {cancels}"
        assert cancels[2] - cancels[0] >= 0.4, f"cancellations not spaced by the 0.3 s grace: {cancels}"
        # The connection is closed (maybe after a 504): nothing else, no hang.
        rest = conn.read_until_close()
        assert conn.eof, "connection left open after the task was abandoned"
        assert rest == b"" or rest.startswith(b"HTTP/1.1 504"), rest[:200]
        assert server_stats(server)["abandoned"] >= 1
    finally:
        gate.touch()  # let the stubborn app finish
        conn.close()
    assert_alive(server.addr)


# --- spawned tasks --------------------------------------------------------------------------

def test_spawned_task_outliving_request_is_reported(narwhal):
    # The orphan finishes after 4 s: only a timeout below that (not the default 5 s) can
    # report it, and 0.5 s leaves 3.5 s of slack for a slow machine.
    server = narwhal(APP, "--timeout-orphan-tasks", "0.5")
    started = time.monotonic()
    assert_alive(server.addr, "/spawn-orphan?s=4", b"spawned")
    rec = wait_record(server, "still pending", "GET", "/spawn-orphan")
    took = time.monotonic() - started
    assert took >= 0.45, f"reported after {took:.2f}s, before the 0.5 s --timeout-orphan-tasks"
    assert "/hello" not in rec


def test_spawned_task_exception_never_retrieved_is_reported(narwhal):
    server = narwhal(APP)
    assert_alive(server.addr, "/spawn-failure", b"spawned")
    rec = wait_record(server, "never retrieved", "GET", "/spawn-failure")
    assert "spawned task failed (on purpose)" in server.log() or "AppBoom" in rec, rec


# --- graceful shutdown ----------------------------------------------------------------------

def test_shutdown_answers_in_flight_keep_alive_request_with_connection_close(narwhal, tmp_path):
    server = narwhal(APP, "--timeout-graceful-shutdown", "20")
    gate = tmp_path / "gate"
    conn = send_req(server, "/hold?tag=ka", gate=gate)  # HTTP/1.1, keep-alive
    server.wait_for_log(r"holding tag=ka\b")
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"Shutting down")
    gate.touch()
    try:
        resp = conn.read_response()
    except NoResponse as exc:
        raise AssertionError(f"in-flight request not answered during shutdown: {exc}\n{server.log()}")
    assert resp.status == 200 and resp.body == b"released ka"
    assert resp.has_token("connection", "close"), f"no 'connection: close' during shutdown: {resp.raw_head!r}"
    assert conn.wait_closed()
    conn.close()
    assert wait_exit(server, GUARD) == 0
    assert "overload_apps: lifespan shutdown" in server.log()


def test_shutdown_cancels_leftover_stubborn_task_then_runs_lifespan_shutdown(narwhal, tmp_path):
    server = narwhal(APP, "--timeout-graceful-shutdown", "0.5", "--timeout-cancel-grace", "0.3")
    report, gate = tmp_path / "stubborn.json", tmp_path / "gate"
    conn = send_req(server, "/stubborn?tag=sd", report, gate)
    try:
        server.wait_for_log(r"overload_apps: stubborn tag=sd\b")
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        rc = wait_exit(server, GUARD)
        took = time.monotonic() - started
    finally:
        gate.touch()
        conn.close()
    log = server.log()
    assert rc == 0, log
    seen, _ = read_report(report)
    assert len(seen.get("cancels", [])) >= 2, f"shutdown cancellation was not level-triggered: {seen}\n{log}"
    assert "overload_apps: lifespan shutdown" in log, log
    first_cancel = log.find("overload_apps: stubborn tag=sd")
    assert log.find("overload_apps: lifespan shutdown") > first_cancel
    assert took >= 0.4, f"exited {took:.2f}s after SIGTERM, before the 0.5 s graceful timeout"
