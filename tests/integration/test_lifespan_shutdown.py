"""The lifespan protocol and graceful shutdown on SIGTERM / SIGINT."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conftest import APPS_DIR, run_cli

TIMEOUT = httpx.Timeout(15.0)
SERVE_ARGS = ("--app-dir", str(APPS_DIR), "--host", "127.0.0.1", "--port", "0")


def _get(server, path: str, **kw) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        return c.get(path, **kw)


def _in_background(fn, *args):
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)
    return future


def _assert_order(log: str, *markers: str) -> None:
    positions = []
    for marker in markers:
        assert marker in log, f"{marker!r} missing from log:\n{log}"
        positions.append(log.index(marker))
    assert positions == sorted(positions), f"expected order {markers} in log:\n{log}"


def _wait_exit(server, timeout: float = 15.0) -> int:
    """Wait for a server already told to stop to exit on its own; return its status.

    No second signal: narwhal treats a second SIGTERM/SIGINT as "exit now" (like
    uvicorn's second Ctrl+C), which would hide what the first one did."""
    try:
        server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {timeout}s after the stop signal:\n{server.log()}")
    return server.stop()  # already exited: only collects the rest of the log


# -------------------------------------------------------------------- lifespan

def test_lifespan_state_is_shallow_copied_into_requests(narwhal):
    server = narwhal("lifespan_apps:state_app")
    first = _get(server, "/first")
    assert first.status_code == 200, server.log()
    assert first.json() == {"keys": ["greeting", "hits"], "greeting": "hello from lifespan", "hits_before": []}
    second = _get(server, "/second").json()
    # Rebinding and adding keys in request 1 did not leak into request 2's copy...
    assert second["keys"] == ["greeting", "hits"]
    assert second["greeting"] == "hello from lifespan"
    # ...but the copy is shallow: the list object itself is shared.
    assert second["hits_before"] == ["/first"]


def test_lifespan_auto_tolerates_unsupported_app(narwhal):
    server = narwhal("lifespan_apps:no_lifespan_app")  # --lifespan auto is the default
    r = _get(server, "/")
    assert r.status_code == 200
    assert r.json() == {"served": True}
    assert server.stop() == 0


def test_lifespan_on_fails_with_unsupported_app():
    r = run_cli("lifespan_apps:no_lifespan_app", *SERVE_ARGS, "--lifespan", "on", timeout=20)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "running on" not in out, out
    assert "no_lifespan_app only handles http" in out, out


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_lifespan_startup_failed(mode):
    r = run_cli("lifespan_apps:failing_startup_app", *SERVE_ARGS, "--lifespan", mode, timeout=20)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "running on" not in out, out
    assert "database unreachable (on purpose)" in out, out


def test_lifespan_events_default(narwhal):
    server = narwhal("lifespan_apps:recording_app")
    assert _get(server, "/").json()["events"] == ["lifespan.startup"]
    assert server.stop() == 0
    _assert_order(server.log(), "Waiting for application startup.", "Application startup complete.",
                  "lifespan_apps: shutdown handler ran")


def test_lifespan_off_sends_no_events(narwhal):
    server = narwhal("lifespan_apps:recording_app", "--lifespan", "off")
    assert _get(server, "/").json()["events"] == []
    assert server.stop() == 0
    log = server.log()
    assert "lifespan_apps: shutdown handler ran" not in log, log
    assert "Waiting for application startup." not in log, log


# -------------------------------------------------------------------- shutdown

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_runs_graceful_shutdown(narwhal, sig):
    server = narwhal("lifespan_apps:recording_app")
    assert _get(server, "/").status_code == 200
    assert server.stop(sig) == 0
    _assert_order(
        server.log(),
        "Started server process [",
        "Application startup complete.",
        "Shutting down",
        "Waiting for application shutdown.",
        "lifespan_apps: shutdown handler ran",
        "Application shutdown complete.",
        "Finished server process [",
    )


def _slow_request(url: str, seconds: float, tag: str, gate=None):
    """GET /sleep: for `seconds`, or with `gate` until that file exists."""
    params = {"s": str(seconds), "tag": tag}
    if gate is not None:
        params["gate"] = str(gate)
    try:
        with httpx.Client(timeout=httpx.Timeout(60.0)) as c:
            return c.get(f"{url}/sleep", params=params)
    except httpx.HTTPError as exc:
        return exc


def test_sigterm_lets_inflight_request_finish(narwhal, tmp_path):
    # The request finishes when the test opens the gate, after the server has begun
    # shutting down: the order below does not depend on how fast the signal is handled.
    server = narwhal("slow_app:app")
    gate = tmp_path / "gate"
    pending = _in_background(_slow_request, server.url, 1, "inflight", gate)
    server.wait_for_log(r"slow_app: sleeping 1(\.0)? tag=inflight")
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"Shutting down")
    gate.touch()
    result = pending.result(timeout=60)
    assert isinstance(result, httpx.Response), f"{result!r}\n{server.log()}"
    assert result.status_code == 200
    assert result.text == "slept 1.0"
    assert _wait_exit(server) == 0
    _assert_order(server.log(), "Shutting down", "slow_app: woke tag=inflight",
                  "slow_app: lifespan shutdown", "Finished server process")


def test_graceful_shutdown_timeout_cancels_long_request(narwhal):
    # The request would sleep 60 s; the 15 s guard stays below the 25 s default graceful
    # timeout, so only the flag's 1 s can have ended it (cancelled, not woken).
    server = narwhal("slow_app:app", "--timeout-graceful-shutdown", "1")
    pending = _in_background(_slow_request, server.url, 60, "long")
    server.wait_for_log(r"slow_app: sleeping 60(\.0)? tag=long")
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    returncode = _wait_exit(server)
    elapsed = time.monotonic() - started
    assert returncode == 0, server.log()
    assert elapsed >= 0.95, f"exited {elapsed:.2f}s after SIGTERM, before the 1 s graceful timeout"
    result = pending.result(timeout=15)
    # The client sees the connection closed (or an error status), never a full answer.
    if isinstance(result, httpx.Response):
        assert result.status_code >= 500, result.text
    else:
        assert isinstance(result, httpx.TransportError), repr(result)
    log = server.log()
    assert "slow_app: cancelled tag=long" in log, log
    assert "slow_app: woke tag=long" not in log, log
    _assert_order(log, "slow_app: cancelled tag=long", "slow_app: lifespan shutdown", "Finished server process")


def test_idle_keep_alive_connection_does_not_delay_shutdown(narwhal):
    # Default graceful timeout (25 s) and keep-alive (5 s): waiting for either would
    # outlast the 15 s guard, which a server that closes idle connections at once meets
    # with room to spare.
    server = narwhal("slow_app:app")
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.get("/sleep", params={"s": "0", "tag": "idle"}).status_code == 200
        # the connection stays open, idle, in the client's pool
        server.signal(signal.SIGTERM)
        returncode = _wait_exit(server, timeout=15.0)
    assert returncode == 0, server.log()


def test_no_new_connections_after_shutdown_starts(narwhal, tmp_path):
    # The holder keeps the server in its graceful shutdown until the test opens the gate,
    # so the late request surely meets a server that is still running.
    server = narwhal("slow_app:app")
    gate = tmp_path / "gate"
    pending = _in_background(_slow_request, server.url, 2, "holder", gate)
    server.wait_for_log(r"slow_app: sleeping 2(\.0)? tag=holder")
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"Shutting down")
    # A new request must not be served: refused, reset or closed without an answer.
    try:
        try:
            with httpx.Client(timeout=TIMEOUT) as c:
                late = c.get(f"{server.url}/sleep", params={"s": "0", "tag": "late"})
        except httpx.TransportError:
            late = None
        assert server.proc.poll() is None, "the server exited while the holder was in flight"
    finally:
        gate.touch()
    assert late is None or late.status_code >= 500, late.text
    result = pending.result(timeout=60)
    assert isinstance(result, httpx.Response) and result.status_code == 200, repr(result)
    assert _wait_exit(server) == 0
    assert "tag=late" not in server.log()


# -------------------------------------------------------------- failures and force

def test_lifespan_shutdown_runs_when_the_address_is_taken(tmp_path):
    # Lifespan startup runs before the address is bound (as in uvicorn); when binding
    # fails, what startup acquired must still be released.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli("lifespan_marker_app:app", "--app-dir", str(APPS_DIR), "--host", "127.0.0.1",
                    "--port", str(port), env={"LIFESPAN_MARKERS_DIR": str(tmp_path)}, timeout=30)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "running on" not in out, out
    assert f"could not bind on 127.0.0.1:{port}: Address already in use" in out, out
    assert (tmp_path / "startup").exists(), out
    assert (tmp_path / "shutdown").exists(), out
    _assert_order(out, "Application startup complete.", "Address already in use",
                  "Application shutdown complete.", "Finished server process")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_second_signal_cancels_requests_and_still_runs_lifespan_shutdown(narwhal, sig):
    # The default graceful timeout (25 s) outlasts the 15 s guard: only the second signal
    # can end the request in time.
    server = narwhal("slow_app:app")
    pending = _in_background(_slow_request, server.url, 60, "long")
    server.wait_for_log(r"slow_app: sleeping 60(\.0)? tag=long")
    server.signal(sig)
    server.wait_for_log(r"Waiting for in-flight requests to finish")
    server.signal(sig)
    assert _wait_exit(server, timeout=15.0) == 0, server.log()
    result = pending.result(timeout=15)
    if isinstance(result, httpx.Response):
        assert result.status_code >= 500, result.text
    else:
        assert isinstance(result, httpx.TransportError), repr(result)
    log = server.log()
    assert "slow_app: woke tag=long" not in log, log
    assert "Task was destroyed but it is pending" not in log, log
    _assert_order(log, "Second stop signal", "slow_app: cancelled tag=long",
                  "slow_app: lifespan shutdown", "Application shutdown complete.",
                  "Finished server process")


def test_third_signal_exits_at_once(narwhal, tmp_path):
    # The request swallows every cancellation, and the cancel grace (30 s) would keep the
    # server waiting for it past the guard: only the third signal can end it in time.
    server = narwhal("overload_apps:router", "--timeout-cancel-grace", "30")

    def stubborn():
        try:
            with httpx.Client(timeout=httpx.Timeout(60.0)) as c:
                return c.get(f"{server.url}/stubborn", params={"tag": "third"},
                             headers={"x-gate": str(tmp_path / "never-opened")})
        except httpx.HTTPError as exc:
            return exc

    pending = _in_background(stubborn)
    server.wait_for_log(r"overload_apps: stubborn tag=third\b")
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"Waiting for in-flight requests to finish")
    server.signal(signal.SIGTERM)
    server.wait_for_log(r"Cancelling 1 request\(s\) still running \(second stop signal\)")
    server.signal(signal.SIGTERM)
    assert _wait_exit(server, timeout=15.0) == 1, server.log()
    assert "Third stop signal: exiting without waiting." in server.log()
    assert isinstance(pending.result(timeout=15), httpx.TransportError)
