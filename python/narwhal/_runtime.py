"""The interpreter thread's program: load the app, run lifespan, serve, shut down.

The C++ worker calls these functions in order; the hot path (scope building,
receive/send, dispatch) lives in the native `_narwhal` module.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
import weakref
from typing import Any, Callable

from narwhal import _loader
from narwhal._lifespan import Lifespan
from narwhal._log import error, info, log_exception, warning

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


def serve(dispatcher: Any) -> None:
    """Run the loop until shutdown finishes. The dispatcher's inbox wakes it through an fd."""
    assert _loop is not None
    _loop.add_reader(dispatcher.fd, dispatcher.drain)
    try:
        _loop.run_forever()
    finally:
        _loop.remove_reader(dispatcher.fd)


def begin_shutdown(dispatcher: Any, graceful_timeout: float, cancel_grace: float = 1.0) -> None:
    global _shutdown_task
    if _shutdown_task is None:
        assert _loop is not None
        _shutdown_task = _loop.create_task(_shutdown(dispatcher, graceful_timeout, cancel_grace))


async def _shutdown(dispatcher: Any, graceful_timeout: float, cancel_grace: float) -> None:
    try:
        info("Shutting down")
        if dispatcher.inflight():
            info("Waiting for in-flight requests to finish. (CTRL+C to force quit)")
            try:
                await asyncio.wait_for(dispatcher.idle(), graceful_timeout)
            except asyncio.TimeoutError:
                count = dispatcher.inflight()
                warning(f"Cancelling {count} request(s) still running after "
                        f"{graceful_timeout:g}s (--timeout-graceful-shutdown).")
                # Level-triggered: cancelled again each grace step, abandoned after three.
                dispatcher.cancel_all()
                try:
                    await asyncio.wait_for(dispatcher.idle(), 3 * cancel_grace + 1.0)
                except asyncio.TimeoutError:
                    warning(f"{dispatcher.inflight()} request(s) still running; stopping anyway.")
        if _lifespan is not None:
            try:
                await asyncio.wait_for(_lifespan.shutdown(), graceful_timeout)
            except asyncio.TimeoutError:
                warning(f"Lifespan shutdown did not finish within {graceful_timeout:g}s "
                        "(--timeout-graceful-shutdown); stopping anyway.")
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


# --- tasks the app spawns ------------------------------------------------------------
# The loop's task factory notes which request was running when a task was created; a
# task still pending a while after its request ended, or one whose exception nobody
# retrieved, is reported with that request.

_origin: "weakref.WeakKeyDictionary[asyncio.Future, tuple[int, str, str]]" = weakref.WeakKeyDictionary()
_spawned: dict[int, list[weakref.ref]] = {}
_orphan_timeout = 5.0


def install_task_tracking(dispatcher: Any, orphan_timeout: float) -> None:
    global _orphan_timeout
    assert _loop is not None
    _orphan_timeout = orphan_timeout
    current_request = dispatcher.current_request

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        origin = current_request()
        if origin is None:  # spawned by a task that a request spawned: inherit
            parent = asyncio.current_task(loop)
            origin = _origin.get(parent) if parent is not None else None
        if origin is not None:
            _origin[task] = origin
            _spawned.setdefault(origin[0], []).append(weakref.ref(task))
        return task

    _loop.set_task_factory(factory)
    _loop.set_exception_handler(_exception_handler)


def _describe(origin: tuple[int, str, str]) -> str:
    return f"{origin[1]} {origin[2]} (id {origin[0]})"


def request_finished(request_id: int) -> None:
    """Called when a request that spawned tasks ends: check them later."""
    refs = _spawned.pop(request_id, None)
    if refs and _loop is not None and _orphan_timeout > 0:
        _loop.call_later(_orphan_timeout, _check_orphans, refs)


def _check_orphans(refs: list[weakref.ref]) -> None:
    for ref in refs:
        task = ref()
        if task is None or task.done():
            continue
        origin = _origin.get(task)
        if origin is None:
            continue
        warning(f"Task {task.get_name()} spawned by request {_describe(origin)} is still pending "
                f"{_orphan_timeout:g}s after the request ended (--timeout-orphan-tasks)\n"
                f"{task_stack(task)}")


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    message = context.get("message") or "Unhandled exception in event loop"
    future = context.get("future") or context.get("task")
    origin = _origin.get(future) if future is not None else None
    if origin is not None:
        message = f"{message} (task spawned by request {_describe(origin)})"
    exc = context.get("exception")
    if exc is not None:
        log_exception(message, exc)
    else:
        error(message)


def task_stack(task: asyncio.Future) -> str:
    """Where a task is suspended: its coroutine chain, outermost first."""
    summaries = []
    obj: Any = task.get_coro() if hasattr(task, "get_coro") else None
    seen = 0
    while obj is not None and seen < 100:
        seen += 1
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
        if frame is not None:
            summaries.append(traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno,
                                                    frame.f_code.co_name))
        obj = getattr(obj, "cr_await", None) or getattr(obj, "gi_yieldfrom", None)
    if not summaries:
        return "Task stack: (not available)"
    return "Task stack (most recent call last):\n" + "".join(traceback.format_list(summaries)).rstrip()
