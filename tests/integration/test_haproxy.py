"""HAProxy with HTTP health checks on narwhal's ready path, in front of two narwhal
instances under a constant client load: one backend stopped gracefully (SIGTERM with
--timeout-shutdown-delay) fails no client request. Run twice: plain HTTP to the
backends, and `send-proxy-v2` (health checks too, `check-send-proxy`) to narwhals that
require the PROXY protocol (--proxy-protocol v2), where every answered request also
shows the header was read (a connection without one is closed). The ready path answers 503 as soon as
the signal arrives while the backend still serves; HAProxy's next check takes it out,
and only then does its listener close. HAProxy retries nothing (retries 0, no
redispatch), so a request routed to a refusing backend would fail.

App: apps/metrics_app.py.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from haproxy_fixture import HAProxy
from rawhttp import server_stats

APP = "metrics_app:app"
GUARD = 30.0
FLAGS = ("--health-ready-path", "/ready", "--timeout-shutdown-delay", "5")


class Load:
    """Client threads sending GET / through the balancer in a loop, counting outcomes."""

    def __init__(self, url: str, threads: int = 2) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self) -> None:
        with httpx.Client(timeout=GUARD) as client:
            while not self._stop.is_set():
                try:
                    resp = client.get(self.url + "/")
                    good = resp.status_code == 200 and resp.text == "ok"
                    why = f"{resp.status_code} {resp.text[:80]!r}"
                except httpx.HTTPError as e:
                    good, why = False, repr(e)
                with self._lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failures.append(why)

    def count(self) -> int:
        with self._lock:
            return self.ok

    def wait_more(self, n: int, timeout: float = GUARD) -> None:
        """Until `n` more requests succeeded than now."""
        target = self.count() + n
        deadline = time.monotonic() + timeout
        while self.count() < target:
            assert time.monotonic() < deadline, f"load stalled at {self.count()} / {target}"
            time.sleep(0.02)  # poll interval

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(GUARD)


@pytest.mark.parametrize("proxy_v2", [False, True], ids=["http", "send-proxy-v2"])
def test_graceful_stop_behind_haproxy_fails_no_request(narwhal, tmp_path, proxy_v2):
    flags = FLAGS + (("--proxy-protocol", "v2") if proxy_v2 else ())
    first = narwhal(APP, *flags)
    second = narwhal(APP, *flags)
    with HAProxy(tmp_path, [first.addr, second.addr], "/ready", proxy_v2=proxy_v2) as lb:
        load = Load(lb.url)
        try:
            load.wait_more(200)
            first.signal(15)
            first.wait_for_log(r"Shutting down in 5 s")
            lb.wait_status(["s0"], "DOWN")
            assert lb.server_status("s1").startswith("UP")
            assert first.proc.wait(GUARD) == 0  # the delay ran out, it drained and exited
            load.wait_more(200)  # the other backend carries the load on its own
        finally:
            load.stop()
        assert load.failures == [], load.failures[:10]
        assert load.count() >= 400
        if proxy_v2:
            assert server_stats(second)["proxy_protocol_errors"] == 0
