"""The interpreter thread's program: load the app, run lifespan, serve, shut down.

The C++ worker calls these functions in order; the hot path (scope building,
receive/send, dispatch) lives in the native `_narwhal` module.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, Callable

from narwhal import _loader
from narwhal._lifespan import Lifespan
from narwhal._log import info, log_exception, warning

_app: Callable | None = None
_loop: asyncio.AbstractEventLoop | None = None
_lifespan: Lifespan | None = None
_shutdown_task: asyncio.Task | None = None


def setup(app: str, app_dir: str, venv: str, factory: bool, interface: str) -> Callable:
    """Make the app importable and import it. Raises LoadError or the import's error."""
    global _app
    venv = venv or os.environ.get("VIRTUAL_ENV", "")
    if venv:
        _loader.add_venv(venv)
    sys.path.insert(0, os.path.abspath(app_dir) if app_dir else os.getcwd())
    _app = _loader.load(app, factory, interface)
    return _app


def create_loop(kind: str) -> asyncio.AbstractEventLoop:
    global _loop
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
            uvloop = None
        if uvloop is not None:
            _loop = uvloop.new_event_loop()
    if _loop is None:
        _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    return _loop


def startup(lifespan_mode: str) -> bool:
    global _lifespan
    assert _loop is not None and _app is not None
    _lifespan = Lifespan(_app, lifespan_mode)
    return _loop.run_until_complete(_lifespan.startup())


def lifespan_state() -> dict[str, Any] | None:
    return _lifespan.state if _lifespan is not None and _lifespan.mode != "off" else None


def serve(bridge: Any) -> None:
    """Run the loop until shutdown finishes. The bridge's inbox wakes it through an fd."""
    assert _loop is not None
    _loop.add_reader(bridge.fd, bridge.drain)
    try:
        _loop.run_forever()
    finally:
        _loop.remove_reader(bridge.fd)


def begin_shutdown(bridge: Any, graceful_timeout: float) -> None:
    global _shutdown_task
    if _shutdown_task is None:
        assert _loop is not None
        _shutdown_task = _loop.create_task(_shutdown(bridge, graceful_timeout))


async def _shutdown(bridge: Any, graceful_timeout: float) -> None:
    try:
        info("Shutting down")
        if bridge.inflight():
            info("Waiting for in-flight requests to finish. (CTRL+C to force quit)")
            try:
                await asyncio.wait_for(bridge.idle(), graceful_timeout)
            except asyncio.TimeoutError:
                count = bridge.inflight()
                warning(f"Cancelling {count} request(s) still running after "
                        f"{graceful_timeout:g}s (--timeout-graceful-shutdown).")
                bridge.cancel_all()
                try:
                    await asyncio.wait_for(bridge.idle(), 1.0)
                except asyncio.TimeoutError:
                    warning(f"{bridge.inflight()} request(s) ignored cancellation; abandoning them.")
        if _lifespan is not None:
            await _lifespan.shutdown()
    except BaseException as exc:  # never leave the loop running
        log_exception("Error during shutdown", exc)
    finally:
        assert _loop is not None
        _loop.stop()


def finish() -> None:
    """Close the loop after serving (pending callbacks are dropped)."""
    if _loop is not None and not _loop.is_closed():
        try:
            _loop.run_until_complete(_loop.shutdown_asyncgens())
        except Exception:
            pass
        _loop.close()
