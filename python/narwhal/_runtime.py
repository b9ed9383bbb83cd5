"""The interpreter thread's program: load the app, run lifespan, serve, shut down.

The C++ worker calls these functions in order; the hot path (scope building,
receive/send, dispatch) lives in the native `_narwhal` module.
"""

from __future__ import annotations

import asyncio
import os
import re
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
_lifespan_stopped = False
_force = asyncio.Event()  # set by the second stop signal
_dispatcher: Any = None
_graceful_timeout = 30.0  # --timeout-graceful-shutdown, set by attach_dispatcher
_cancel_grace = 1.0  # --timeout-cancel-grace


def use_installation_python() -> None:
    """Outside a venv, make sys.executable the installation's python (as sysconfig
    names it), not the server binary: subprocess.run([sys.executable, ...]) and
    multiprocessing's spawn start method run it."""
    import sysconfig

    bindir = sysconfig.get_config_var("BINDIR") or os.path.join(sys.base_prefix, "bin")
    for name in (f"python{sysconfig.get_python_version()}", "python3"):
        candidate = os.path.join(bindir, name)
        if os.access(candidate, os.X_OK):
            sys.executable = sys._base_executable = candidate  # type: ignore[attr-defined]
            return


def setup(app: str, app_dir: str, factory: bool, interface: str) -> Callable:
    """Make the app importable and import it. Raises LoadError or the import's error.

    A virtualenv is already in place: the interpreter started as the venv's python."""
    global _app
    sys.path.insert(0, os.path.abspath(app_dir) if app_dir else os.getcwd())
    _app = _loader.load(app, factory, interface)
    return _app


def create_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The loop, with narwhal's task factory and exception handler installed before the
    app's lifespan startup runs, so that what the app installs there composes with them.

    "auto" takes uvloop where it can be imported: not in a sub-interpreter (uvloop's
    extension modules do not support them), which then runs asyncio's loop."""
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
    _hooks.install(_loop)
    asyncio.set_event_loop(_loop)
    return _loop


class _AppHooks:
    """narwhal's task factory (which notes the request that spawned each task) and
    exception handler (which names that request) stay installed on the loop for its
    lifetime. The loop's own setters and getters are wrapped, on this loop object only
    (its type stays uvloop.Loop or asyncio's): what the app sets (Sentry, OpenTelemetry,
    aiomonitor do so in lifespan startup) is called from narwhal's, and the getters
    return what the app set, as if narwhal had installed nothing, so an app that chains
    to the previous factory cannot end up calling itself."""

    def __init__(self) -> None:
        self.task_factory: Callable | None = None
        self.exception_handler: Callable | None = None

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_task_factory(_task_factory)
        loop.set_exception_handler(_exception_handler)
        loop.set_task_factory = self.set_task_factory  # type: ignore[method-assign]
        loop.get_task_factory = self.get_task_factory  # type: ignore[method-assign]
        loop.set_exception_handler = self.set_exception_handler  # type: ignore[method-assign]
        loop.get_exception_handler = self.get_exception_handler  # type: ignore[method-assign]

    def set_task_factory(self, factory: Callable | None) -> None:
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self.task_factory = factory
        if _dispatcher is not None:
            _dispatcher.set_task_factory(factory)

    def get_task_factory(self) -> Callable | None:
        return self.task_factory

    def set_exception_handler(self, handler: Callable | None) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self.exception_handler = handler

    def get_exception_handler(self) -> Callable | None:
        return self.exception_handler


_hooks = _AppHooks()


def startup(lifespan_mode: str) -> bool:
    global _lifespan
    assert _loop is not None and _app is not None
    _lifespan = Lifespan(_app, lifespan_mode)
    return _loop.run_until_complete(_lifespan.startup())


def stop_lifespan(timeout: float) -> None:
    """Runs the app's lifespan shutdown if its startup ran and its shutdown has not:
    when the server fails to start after lifespan startup (the address is taken), the
    app still releases what startup acquired."""
    global _lifespan_stopped
    if _lifespan is None or _lifespan_stopped or _loop is None or _loop.is_closed():
        return
    _lifespan_stopped = True
    _loop.run_until_complete(_run_lifespan_shutdown(timeout))


async def _run_lifespan_shutdown(timeout: float) -> None:
    global _lifespan_stopped
    _lifespan_stopped = True
    assert _lifespan is not None
    try:
        await asyncio.wait_for(_lifespan.shutdown(), timeout)
    except asyncio.TimeoutError:
        warning(f"Lifespan shutdown did not finish within {timeout:g}s "
                "(--timeout-graceful-shutdown); stopping anyway.")


def lifespan_state() -> dict[str, Any] | None:
    return _lifespan.state if _lifespan is not None and _lifespan.mode != "off" else None


def serve(dispatcher: Any) -> None:
    """Run the loop until shutdown finishes. The dispatcher's inbox wakes it through an fd;
    with --io-threads 0 the network side's events do too, through a second one."""
    assert _loop is not None
    _loop.add_reader(dispatcher.fd, dispatcher.drain)
    io_fd = dispatcher.io_fd
    if io_fd >= 0:
        _loop.add_reader(io_fd, dispatcher.pump_io)
        _loop.call_soon(dispatcher.pump_io)  # what was posted before the loop ran
    try:
        _loop.run_forever()
    finally:
        _loop.remove_reader(dispatcher.fd)
        if io_fd >= 0:
            _loop.remove_reader(io_fd)


def begin_shutdown(dispatcher: Any, graceful_timeout: float, cancel_grace: float = 1.0) -> None:
    """First stop signal: shut down gracefully. Second: stop waiting for in-flight
    requests, cancel them, but still run the app's lifespan shutdown."""
    global _shutdown_task
    assert _loop is not None
    if _shutdown_task is None:
        _shutdown_task = _loop.create_task(_shutdown(dispatcher, graceful_timeout, cancel_grace))
    elif not _force.is_set():
        warning("Second stop signal: cancelling in-flight requests; lifespan shutdown still "
                "runs (a third signal exits at once).")
        _force.set()


async def _until(awaitable: Any, timeout: float) -> bool:
    """True when `awaitable` finished within `timeout`; False on timeout or when a second
    stop signal arrives first."""
    done_fut = asyncio.ensure_future(awaitable)
    forced = asyncio.ensure_future(_force.wait())
    try:
        done, _ = await asyncio.wait({done_fut, forced}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        forced.cancel()
    if done_fut in done:
        return True
    done_fut.cancel()
    return False


async def _shutdown(dispatcher: Any, graceful_timeout: float, cancel_grace: float) -> None:
    try:
        info("Shutting down")
        if dispatcher.inflight():
            info("Waiting for in-flight requests to finish. (CTRL+C to force quit)")
            if not await _until(dispatcher.idle(), graceful_timeout):
                count = dispatcher.inflight()
                if _force.is_set():
                    warning(f"Cancelling {count} request(s) still running (second stop signal).")
                else:
                    warning(f"Cancelling {count} request(s) still running after "
                            f"{graceful_timeout:g}s (--timeout-graceful-shutdown).")
                # Level-triggered: cancelled again each grace step, abandoned after three.
                dispatcher.cancel_all()
                try:
                    await asyncio.wait_for(dispatcher.idle(), 3 * cancel_grace + 1.0)
                except asyncio.TimeoutError:
                    warning(f"{dispatcher.inflight()} request(s) still running; stopping anyway.")
        if _lifespan is not None and not _lifespan_stopped:
            await _run_lifespan_shutdown(graceful_timeout)
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


def attach_dispatcher(dispatcher: Any, orphan_timeout: float, graceful_timeout: float,
                      cancel_grace: float) -> None:
    """Connects the task factory to the dispatcher (which knows the running request) and
    hands the dispatcher the factory the app installed, for the requests' own tasks."""
    global _orphan_timeout, _dispatcher, _graceful_timeout, _cancel_grace
    _orphan_timeout = orphan_timeout
    _graceful_timeout = graceful_timeout
    _cancel_grace = cancel_grace
    _dispatcher = dispatcher
    dispatcher.set_task_factory(_hooks.task_factory)


class _Forgotten:
    """What threading's dummy-thread tracker becomes (forget_dummy_thread)."""


def forget_dummy_thread() -> None:
    """Before a sub-interpreter is finalised, on its thread: take the threading.Thread
    stand-in that threading.current_thread() made for this thread (threading did not
    start it) out of threading's table now. Its tracker would do that when the thread
    state is cleared, after the modules are gone, and print "Exception ignored in
    _DeleteDummyThreadOnDel"; the tracker still keeps the stand-in alive until then, as
    before, only without its __del__."""
    import threading

    local = getattr(threading, "_thread_local_info", None)
    tracker = getattr(local, "_track_dummy_thread_ref", None)
    if tracker is not None:
        threading._active.pop(threading.get_ident(), None)
        tracker.__class__ = _Forgotten


def threads_left_running(grace: float) -> list[str]:
    """Before a sub-interpreter is finalised, on its thread: the threads that would keep
    it from being finalised. CPython joins the non-daemon ones itself (as at any exit);
    a thread it does not join (a daemon thread, or one started with _thread directly)
    that is still running makes Py_EndInterpreter abort the whole process. Such threads
    get `grace` seconds to end; the names of those still running are returned (a thread
    without a threading.Thread object is named by its count)."""
    import _thread
    import threading
    import time

    def unjoined() -> list[str]:
        current = threading.current_thread()
        joined = [t for t in threading.enumerate() if t is not current and not t.daemon]
        daemons = [t.name for t in threading.enumerate() if t is not current and t.daemon]
        raw = _thread._count() - len(joined) - len(daemons)
        return daemons + [f"{raw} thread(s) started with _thread"] * (raw > 0)

    deadline = time.monotonic() + grace
    left = unjoined()
    while left and time.monotonic() < deadline:
        time.sleep(0.01)  # gives the GIL to them
        left = unjoined()
    return left


def on_shutdown_event() -> None:
    """The dispatcher took a shutdown event from its inbox (a stop signal)."""
    begin_shutdown(_dispatcher, _graceful_timeout, _cancel_grace)


_SUBINTERPRETER_REFUSAL = re.compile(r"module (\S+) does not support loading in subinterpreters")


def subinterpreter_refusal(exc: BaseException | None) -> str | None:
    """The extension module that CPython refused to load in this sub-interpreter (its
    multi-interpreter check), when that is what raised `exc` or one of its causes."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError):
            found = _SUBINTERPRETER_REFUSAL.search(str(exc))
            if found:
                return found.group(1)
        exc = exc.__cause__ or exc.__context__
    return None


def _task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future:
    app_factory = _hooks.task_factory
    if app_factory is not None:
        task = app_factory(loop, coro, **kwargs)
    else:
        task = asyncio.Task(coro, loop=loop, **kwargs)
    origin = _dispatcher.current_request() if _dispatcher is not None else None
    if origin is None:  # spawned by a task that a request spawned: inherit
        parent = asyncio.current_task(loop)
        origin = _origin.get(parent) if parent is not None else None
    if origin is not None:
        _origin[task] = origin
        _spawned.setdefault(origin[0], []).append(weakref.ref(task))
    return task


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
        if _dispatcher is not None:
            _dispatcher.note_orphan()


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    message = context.get("message") or "Unhandled exception in event loop"
    future = context.get("future") or context.get("task")
    origin = _origin.get(future) if future is not None else None
    if origin is not None:
        message = f"{message} (task spawned by request {_describe(origin)})"
    exc = context.get("exception")
    if exc is not None and "never retrieved" in message and _dispatcher is not None:
        _dispatcher.note_unretrieved()  # asyncio's "Task exception was never retrieved"
    if exc is not None:
        log_exception(message, exc)
    else:
        error(message)
    app_handler = _hooks.exception_handler
    if app_handler is not None:
        try:
            app_handler(loop, context)
        except Exception as handler_exc:
            log_exception("The app's loop exception handler failed", handler_exc)


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
