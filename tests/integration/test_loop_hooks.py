"""A task factory and loop exception handler that the app installs in lifespan startup
(as Sentry, OpenTelemetry, aiomonitor do) work alongside narwhal's own: the app's
factory sees the requests' tasks and the ones it spawns, its handler gets the exception
nobody retrieved, and narwhal still names the request that spawned the failed task and
still cancels a request past its deadline."""

from __future__ import annotations

import time

import httpx
import pytest

TIMEOUT = httpx.Timeout(30.0)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_app_hooks_installed_in_startup_compose_with_narwhals(narwhal, loop):
    server = narwhal("loop_hook_apps:app", "--loop", loop, "--timeout-request", "1")
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        report = c.get("/report").json()
        assert report["factory_is_ours"] and report["handler_is_ours"], report
        before = len(report["created"])
        assert before >= 1, report  # /report's own request task
        assert c.get("/spawn-failure").status_code == 200
        # narwhal's handler names the request that spawned the task...
        server.wait_for_log(r"Task exception was never retrieved \(task spawned by request "
                            r"GET /spawn-failure")
        # ...and the app's handler got the same context.
        deadline = time.monotonic() + 30
        while True:
            report = c.get("/report").json()
            if report["contexts"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert report["contexts"] == ["background failure (on purpose)"], report
        # The app's factory made the requests' tasks and the task the request spawned.
        created = report["created"][before:]
        assert "coroutine" in created, report  # _fail_in_background()
        assert len(created) >= 3, report  # /spawn-failure, the background task, /report
        # narwhal's cancel scope still ends a request past --timeout-request.
        assert c.get("/sleep").status_code == 504, server.log()
    assert server.stop() == 0, server.log()
