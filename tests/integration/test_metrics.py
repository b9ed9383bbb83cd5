"""The --metrics-bind listener: Prometheus text at /metrics, served by C++ (a thread of
the process, or under --workers the master), parsed here with prometheus_client's own
parser. Every check compares two scrapes around traffic the test sent, so the numbers
must move by exactly what was sent.

Cases: requests by method and status class, body bytes, histogram counts; a WebSocket
session's messages; a shed 503; 404 elsewhere; --workers 2 (the sum over workers, the
worker labels; a killed worker's counts stay and its restart is counted).

App: apps/metrics_app.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from rawhttp import RawConnection, exchange, request
from wsclient import connect

APP = "metrics_app:app"
GUARD = 20.0
METRICS_URL = re.compile(r"Prometheus metrics on (http://\S+/metrics)")


def metrics_url(server) -> str:
    return server.wait_for_log(METRICS_URL.pattern).group(1)


def scrape(url: str) -> dict:
    """{(sample name, sorted label items): value} of one scrape."""
    with urllib.request.urlopen(url, timeout=GUARD) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_metric(url: str, name: str, want, timeout: float = GUARD, **labels) -> dict:
    """Scrape until `want(value)` holds (counters published on a heartbeat lag a little)."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(url)
        if want(value(m, name, **labels)):
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} = {value(m, name, **labels)} after {timeout}s")
        time.sleep(0.05)  # poll interval


def wait_requests(url: str, count: float) -> dict:
    """The first scrape that has `count` requests answered in total. A response's last
    byte can reach the client just before the server has counted it, so a scrape right
    after a response may miss that one; waiting for the total, then checking each number
    exactly, still catches any request counted twice or in the wrong place."""
    return wait_metric(url, "narwhal_http_request_duration_seconds_count", lambda v: v >= count)


def send_requests(server, ok: int, missing: int, posted: bytes) -> int:
    """`ok` GETs answered 200, `missing` answered 404, one POST echoing `posted`; returns
    the response body bytes the app sent."""
    sent = 0
    with RawConnection(server.addr, timeout=GUARD) as conn:
        for _ in range(ok):
            conn.send(request("GET", "/"))
            resp = conn.read_response()
            assert resp.status == 200
            sent += len(resp.body)
        for _ in range(missing):
            conn.send(request("GET", "/status/404"))
            resp = conn.read_response()
            assert resp.status == 404
            sent += len(resp.body)
        conn.send(request("POST", "/echo", body=posted))
        resp = conn.read_response()
        assert resp.body == posted
        sent += len(resp.body)
    return sent


def test_requests_bytes_and_histograms_move_by_what_was_sent(narwhal):
    server = narwhal(APP, "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    before = scrape(url)
    posted = b"x" * 1000
    body_bytes = send_requests(server, ok=5, missing=3, posted=posted)
    after = wait_requests(url, value(before, "narwhal_http_request_duration_seconds_count") + 9)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("narwhal_http_requests_total", method="GET", status="2xx") == 5
    assert delta("narwhal_http_requests_total", method="GET", status="4xx") == 3
    assert delta("narwhal_http_requests_total", method="POST", status="2xx") == 1
    assert delta("narwhal_http_request_body_bytes_total") == len(posted)
    assert delta("narwhal_http_response_body_bytes_total") == body_bytes
    assert delta("narwhal_http_request_duration_seconds_count") == 9
    assert delta("narwhal_http_queue_wait_seconds_count") == 9
    assert delta("narwhal_http_dispatched_requests_total") == 9
    assert value(after, "narwhal_http_request_duration_seconds_bucket", le="+Inf") == \
        value(after, "narwhal_http_request_duration_seconds_count")
    assert value(after, "narwhal_build_info", version=value_label(after, "narwhal_build_info")) == 1
    assert value(after, "narwhal_process_start_time_seconds") > 1e9


def value_label(metrics: dict, name: str) -> str:
    (labels,) = [dict(k[1]) for k in metrics if k[0] == name]
    return labels["version"]


def test_other_paths_are_404_and_the_app_is_not_involved(narwhal):
    server = narwhal(APP, "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    try:
        urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=GUARD)
        raise AssertionError("expected 404")
    except urllib.error.HTTPError as e:
        assert e.code == 404
    # Scrapes are not requests of the app.
    m = scrape(url)
    assert value(m, "narwhal_http_dispatched_requests_total") == 0


def test_websocket_session_counts(narwhal):
    server = narwhal(APP, "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    before = scrape(url)

    async def session():
        async with connect(f"ws://{server.host}:{server.port}/ws") as ws:
            for text in ("one", "two", "three"):
                await ws.send(text)
                assert await ws.recv() == text
            during = scrape(url)
            assert value(during, "narwhal_websocket_sessions_open") == 1
    asyncio.run(session())
    after = wait_metric(url, "narwhal_websocket_sessions_open", lambda v: v == 0)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("narwhal_websocket_sessions_total") == 1
    assert delta("narwhal_websocket_messages_total", direction="in") == 3
    assert delta("narwhal_websocket_messages_total", direction="out") == 3
    assert delta("narwhal_websocket_message_bytes_total", direction="in") == 11
    assert delta("narwhal_websocket_message_bytes_total", direction="out") == 11


def test_shed_request_is_counted(narwhal, tmp_path):
    server = narwhal(APP, "--metrics-bind", "127.0.0.1:0", "--limit-concurrency", "1",
                     "--limit-queue", "0")
    url = metrics_url(server)
    gate = tmp_path / "gate"
    holder = RawConnection(server.addr, timeout=GUARD)
    try:
        holder.send(request("GET", "/hold", headers=[("x-gate", str(gate))]))
        server.wait_for_log(r"metrics_app: holding")
        during = scrape(url)
        assert value(during, "narwhal_http_requests_in_flight") == 1
        shed = exchange(server.addr, request("GET", "/"), check_closed=False)
        assert shed.status == 503
        gate.write_text("go")
        assert holder.read_response().status == 200
    finally:
        gate.write_text("go")
        holder.close()
    after = wait_requests(url, 2)
    assert value(after, "narwhal_http_shed_total") == 1
    assert value(after, "narwhal_http_requests_total", method="GET", status="5xx") == 1
    assert value(after, "narwhal_http_requests_total", method="GET", status="2xx") == 1


def worker_pids(server, count: int) -> list[int]:
    deadline = time.monotonic() + GUARD
    while True:
        pids = [int(p) for p in re.findall(r"Worker process \[(\d+)\] is ready", server.log())]
        if len(pids) >= count:
            return pids
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)  # poll interval


def test_workers_sum_label_and_survive_a_killed_worker(narwhal):
    server = narwhal(APP, "--workers", "2", "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    first, second = worker_pids(server, 2)
    wait_metric(url, "narwhal_workers", lambda v: v == 2, state="ready")
    # Separate connections, so both workers are likely to serve some; the sum is exact
    # whichever served them.
    for _ in range(10):
        assert exchange(server.addr, request("GET", "/"), check_closed=False).status == 200
    for _ in range(4):
        assert exchange(server.addr, request("GET", "/status/404"), check_closed=False).status == 404
    m = wait_requests(url, 14)
    assert value(m, "narwhal_http_requests_total", method="GET", status="2xx") == 10
    assert value(m, "narwhal_http_requests_total", method="GET", status="4xx") == 4
    assert value(m, "narwhal_http_request_duration_seconds_count") == 14
    labelled = {dict(k[1])["pid"] for k in m if k[0] == "narwhal_worker_connections_open"}
    assert labelled == {str(first), str(second)}
    # The published counters follow on the next heartbeat.
    wait_metric(url, "narwhal_http_dispatched_requests_total", lambda v: v == 14)

    os.kill(first, signal.SIGKILL)
    m = wait_metric(url, "narwhal_worker_restarts_total", lambda v: v == 1, cause="exit")
    assert value(m, "narwhal_http_requests_total", method="GET", status="2xx") == 10
    assert value(m, "narwhal_http_requests_total", method="GET", status="4xx") == 4
    assert value(m, "narwhal_http_request_duration_seconds_count") == 14
    assert value(m, "narwhal_http_dispatched_requests_total") == 14
    assert value(m, "narwhal_worker_restarts_total", cause="healthcheck") == 0
    # The replacement serves, and the sum goes on from there.
    worker_pids(server, 3)
    assert exchange(server.addr, request("GET", "/"), check_closed=False).status == 200
    m = wait_requests(url, 15)
    assert value(m, "narwhal_http_requests_total", method="GET", status="2xx") == 11


def test_a_hung_worker_counts_as_a_healthcheck_restart(narwhal):
    """A worker whose loop is stuck past --timeout-worker-healthcheck is replaced by the
    master: a restart with cause healthcheck, not exit (it died of the master's signal)."""
    server = narwhal("pid_app:app", "--workers", "1", "--timeout-worker-healthcheck", "1",
                     "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    worker_pids(server, 1)

    def block():
        try:
            exchange(server.addr, request("GET", "/block"), timeout=60)
        except (AssertionError, OSError):
            pass  # the worker dies under it: that is the point

    client = threading.Thread(target=block, daemon=True)
    client.start()
    m = wait_metric(url, "narwhal_worker_restarts_total", lambda v: v == 1, timeout=60,
                    cause="healthcheck")
    assert value(m, "narwhal_worker_restarts_total", cause="exit") == 0
    worker_pids(server, 2)  # the replacement is ready
    client.join(60)
    m = scrape(url)
    assert value(m, "narwhal_worker_restarts_total", cause="healthcheck") == 1
    assert value(m, "narwhal_worker_restarts_total", cause="exit") == 0


def test_orphan_tasks_and_unretrieved_exceptions_are_counted(narwhal):
    """Both are seen only by the Python side, which counts them through the dispatcher."""
    server = narwhal("overload_apps:router", "--timeout-orphan-tasks", "0.2",
                     "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    m = scrape(url)
    assert value(m, "narwhal_tasks_orphaned_total") == 0
    assert value(m, "narwhal_task_exceptions_unretrieved_total") == 0
    assert exchange(server.addr, request("GET", "/spawn-orphan?s=3"), check_closed=False).body == b"spawned"
    server.wait_for_log(r"still pending")
    wait_metric(url, "narwhal_tasks_orphaned_total", lambda v: v == 1)
    assert exchange(server.addr, request("GET", "/spawn-failure"), check_closed=False).body == b"spawned"
    server.wait_for_log(r"never retrieved")
    m = wait_metric(url, "narwhal_task_exceptions_unretrieved_total", lambda v: v == 1)
    assert value(m, "narwhal_tasks_orphaned_total") == 1


def test_scrape_answers_while_the_loop_is_stuck(narwhal, tmp_path):
    server = narwhal("overload_apps:router", "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    gate = tmp_path / "gate"
    blocker = RawConnection(server.addr, timeout=GUARD)
    try:
        blocker.send(request("GET", "/block/gate", headers=[("x-gate", str(gate))]))
        server.wait_for_log(r"overload_apps: blocking")
        m = scrape(url)  # the loop is blocked until the gate file exists
        assert value(m, "narwhal_http_requests_in_flight") == 1
        assert not gate.exists()
        gate.write_text("go")
        assert blocker.read_response().status == 200
    finally:
        gate.write_text("go")
        blocker.close()
