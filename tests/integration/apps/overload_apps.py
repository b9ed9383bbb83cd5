"""ASGI apps for the backpressure, cancel-scope and watchdog tests, imported as
`overload_apps:router` (dispatch on the first path segment) or by name.

Side channel, as in raw_apps: what the client cannot see (what `send` raised, what
`receive()` returned after a disconnect, whether a CancelledError arrived and the
`finally` ran) is written as JSON to the file named by the request header
`x-report`, atomically (temporary file + rename). Apps that report several things
over time rewrite the same file with the whole state each time.

Apps that hold a slot (and /block/gate, which blocks the whole loop) wait for the
file named by the header `x-gate` to exist, so the test decides when they finish;
they give up after 30 s (failure guard).

Markers the tests wait for go to stderr as `overload_apps: <event> tag=<tag>`; the
tag comes from the query string (?tag=...).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import sys
import time
from typing import Any, Awaitable, Callable, MutableMapping

from app_util import header, query
from app_util import report_to_header as report

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

GATE_GIVE_UP = 30.0


class AppBoom(Exception):
    """Raised by the spawned task whose exception nobody retrieves."""


# --- helpers -------------------------------------------------------------------

def _log(event: str, scope: Scope | None = None) -> None:
    tag = query(scope).get("tag", "-") if scope is not None else "-"
    print(f"overload_apps: {event} tag={tag}", file=sys.stderr, flush=True)


async def read_body(receive: Receive) -> tuple[int, int, bool]:
    """(body length, number of http.request messages, disconnected)."""
    total = count = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return total, count, True
        count += 1
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return total, count, False


async def respond(send: Send, status: int, body: bytes = b"",
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    hdrs = [(b"content-type", b"text/plain; charset=utf-8")] + list(headers or [])
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


async def wait_gate(scope: Scope) -> bool:
    """Wait until the `x-gate` file exists (True) or GATE_GIVE_UP passed (False)."""
    gate = header(scope, "x-gate") or ""
    deadline = time.monotonic() + GATE_GIVE_UP
    while not (gate and os.path.exists(gate)):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _log("lifespan shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


# --- admission / backpressure ------------------------------------------------------

async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    await read_body(receive)
    await respond(send, 200, b"hello")


async def sleep_app(scope: Scope, receive: Receive, send: Send) -> None:
    """await asyncio.sleep(?s=X) (default 0.05), then 200 "ok"."""
    await asyncio.sleep(float(query(scope).get("s", "0.05")))
    await respond(send, 200, b"ok")


async def hold(scope: Scope, receive: Receive, send: Send) -> None:
    """Log `holding`, wait for the x-gate file, then 200 "released <tag>"."""
    _log("holding", scope)
    opened = await wait_gate(scope)
    _log("released" if opened else "gave up", scope)
    await respond(send, 200 if opened else 504, b"released " + query(scope).get("tag", "-").encode())


async def slow_upload(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, sleeping 1 ms between receive() calls; answer its length."""
    total = count = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            report(scope, {"disconnected": True, "received": total})
            return
        count += 1
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
        await asyncio.sleep(0.001)
    await respond(send, 200, str(total).encode(), headers=[(b"x-messages", str(count).encode())])


async def big_download(scope: Scope, receive: Receive, send: Send) -> None:
    """Stream ?total=N bytes (default 1 GiB) in ?chunk=N pieces (default 64 KiB).

    Reports how far it got, what `send` raised (class, module, whether it is an
    OSError / narwhal.ClientDisconnected) and what `receive()` returned afterwards.
    With ?progress=1 it logs `sent N MiB` each time another whole MiB went through
    `send`, so a test can wait for progress instead of guessing how long it takes."""
    q = query(scope)
    total = int(q.get("total", str(1 << 30)))
    chunk = bytes(int(q.get("chunk", str(64 * 1024))))
    progress = q.get("progress") == "1"
    sent = 0
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    try:
        while sent < total:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            before, sent = sent, sent + len(chunk)
            if progress and sent >> 20 != before >> 20:
                _log(f"sent {sent >> 20} MiB", scope)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except BaseException as exc:  # noqa: BLE001 - report whatever `send` raised
        try:
            import narwhal  # the server's package, importable inside the server
            is_cd = isinstance(exc, narwhal.ClientDisconnected)
        except Exception:  # noqa: BLE001
            is_cd = None
        state: dict[str, Any] = {
            "sent": sent, "exc_type": type(exc).__name__, "exc_module": type(exc).__module__,
            "is_oserror": isinstance(exc, OSError), "is_client_disconnected": is_cd,
            "receive": None,
        }
        report(scope, state)
        if isinstance(exc, asyncio.CancelledError):
            raise
        try:
            message = await asyncio.wait_for(receive(), 5.0)
            state["receive"] = message.get("type")
        except asyncio.TimeoutError:
            state["receive"] = "timeout"
        report(scope, state)
        return
    report(scope, {"sent": sent, "exc_type": None, "receive": None})


async def read_then_answer(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the whole body; report (received, disconnected); answer 200 with the length."""
    received, count, disconnected = await read_body(receive)
    report(scope, {"received": received, "messages": count, "disconnected": disconnected})
    if not disconnected:
        await respond(send, 200, str(received).encode())


async def start_then_read(scope: Scope, receive: Receive, send: Send) -> None:
    """Start a chunked 200 and send one part, then read the body; report as above."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
    received, count, disconnected = await read_body(receive)
    report(scope, {"received": received, "messages": count, "disconnected": disconnected})
    if not disconnected:
        await send({"type": "http.response.body", "body": str(received).encode(), "more_body": False})


# --- cancel scopes ---------------------------------------------------------------

async def wait_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, then await receive() again and report what it returned."""
    await read_body(receive)
    _log("waiting", scope)
    state: dict[str, Any] = {"type": None, "cancelled": False}
    try:
        message = await receive()
        state["type"] = message.get("type")
    except asyncio.CancelledError:
        state["cancelled"] = True
        raise
    finally:
        report(scope, state)


async def ignore_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    """Never look at receive(); sleep ?s=X (default 30). Reports CancelledError and finally."""
    state: dict[str, Any] = {"cancelled": False, "finally": False, "completed": False}
    _log("sleeping", scope)
    try:
        await asyncio.sleep(float(query(scope).get("s", "30")))
        state["completed"] = True
    except asyncio.CancelledError:
        state["cancelled"] = True
        raise
    finally:
        state["finally"] = True
        report(scope, state)
    await respond(send, 200, b"slept")


async def start_then_sleep(scope: Scope, receive: Receive, send: Send) -> None:
    """Start a chunked 200, send one part, then sleep ?s=X (default 30)."""
    state: dict[str, Any] = {"cancelled": False, "finally": False}
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first part\n", "more_body": True})
    _log("sleeping", scope)
    try:
        await asyncio.sleep(float(query(scope).get("s", "30")))
    except asyncio.CancelledError:
        state["cancelled"] = True
        raise
    finally:
        state["finally"] = True
        report(scope, state)
    await send({"type": "http.response.body", "body": b"late part\n", "more_body": False})


async def stubborn_wait(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
    """Swallow every CancelledError and carry on until the x-gate file exists
    (or 30 s). Reports the monotonic time of each cancellation it swallowed."""
    gate = header(scope, "x-gate") or ""
    cancels: list[float] = []
    started = time.monotonic()
    _log("stubborn", scope)
    while not (gate and os.path.exists(gate)) and time.monotonic() - started < GATE_GIVE_UP:
        try:
            await stubborn_wait(0.05)
        except asyncio.CancelledError:
            cancels.append(time.monotonic() - started)
            report(scope, {"cancels": cancels})
            continue
    report(scope, {"cancels": cancels, "done": True})
    _log("stubborn done", scope)


async def orphan_sleeper(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def orphan_failure() -> None:
    await asyncio.sleep(0)
    raise AppBoom("spawned task failed (on purpose)")


_KEEP: set[asyncio.Task] = set()


async def spawn_orphan(scope: Scope, receive: Receive, send: Send) -> None:
    """Spawn a task that sleeps ?s=X (default 3) and answer at once."""
    task = asyncio.get_running_loop().create_task(orphan_sleeper(float(query(scope).get("s", "3"))))
    _KEEP.add(task)
    task.add_done_callback(_KEEP.discard)
    await respond(send, 200, b"spawned")


async def spawn_failure(scope: Scope, receive: Receive, send: Send) -> None:
    """Spawn a task that raises and whose exception nobody retrieves; answer at once."""
    asyncio.get_running_loop().create_task(orphan_failure())
    await respond(send, 200, b"spawned")


# --- watchdog: things that block the event loop ------------------------------------------

def block_with_time_sleep(seconds: float) -> None:
    time.sleep(seconds)


def burn_cpu(seconds: float) -> int:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def block_on_socket_recv(seconds: float) -> None:
    a, b = socket.socketpair()
    try:
        a.settimeout(seconds)
        try:
            a.recv(1)
        except socket.timeout:
            pass
    finally:
        a.close()
        b.close()


# ctypes.PyDLL calls, unlike CDLL's, keep the GIL for the whole C call.
_LIBC_KEEPING_THE_GIL = ctypes.PyDLL(None)


def block_in_c_call(seconds: float) -> None:
    """One C call (libc usleep) that holds the GIL throughout, for a wall-clock time: a
    stand-in for a C extension that forgot to release it. (CPU-bound C code, such as a
    catastrophic regex, would hold it for a time that grows with the machine's load.)"""
    _LIBC_KEEPING_THE_GIL.usleep(int(seconds * 1_000_000))


def block_until_gate(gate: str) -> None:
    """Block the loop (GIL free, as in time.sleep) until the file `gate` exists: the test
    decides how long the loop stays blocked. Gives up after GATE_GIVE_UP."""
    deadline = time.monotonic() + GATE_GIVE_UP
    while not (gate and os.path.exists(gate)) and time.monotonic() < deadline:
        time.sleep(0.01)


BLOCKERS = {
    "sleep": block_with_time_sleep,
    "cpu": burn_cpu,
    "socket": block_on_socket_recv,
    "gil": block_in_c_call,
}


async def block(scope: Scope, receive: Receive, send: Send) -> None:
    """/block/<kind>?s=X: block the event loop for about X s (default 0.5);
    /block/gate: until the file named by `x-gate` exists. Logs `blocking` first."""
    kind = scope["path"].rstrip("/").rsplit("/", 1)[-1]
    seconds = float(query(scope).get("s", "0.5"))
    await read_body(receive)
    _log("blocking", scope)
    started = time.monotonic()
    if kind == "gate":
        block_until_gate(header(scope, "x-gate") or "")
    else:
        BLOCKERS[kind](seconds)
    took = time.monotonic() - started
    await respond(send, 200, f"blocked {took:.3f}".encode())


# --- routing -----------------------------------------------------------------------------

ROUTES = {
    "hello": hello,
    "sleep": sleep_app,
    "hold": hold,
    "upload": slow_upload,
    "download": big_download,
    "read": read_then_answer,
    "start-then-read": start_then_read,
    "wait-disconnect": wait_disconnect,
    "ignore-disconnect": ignore_disconnect,
    "start-then-sleep": start_then_sleep,
    "stubborn": stubborn,
    "spawn-orphan": spawn_orphan,
    "spawn-failure": spawn_failure,
    "block": block,
}


async def router(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(scope, receive, send)
        return
    if scope["type"] != "http":
        return
    first = scope.get("path", "/").lstrip("/").split("/", 1)[0]
    await ROUTES.get(first, hello)(scope, receive, send)

