"""For --interpreters: every answer says which interpreter and process served it.

/        {"interpreter": id, "pid": pid, "gil": "own" / "shared" (None before 3.13)}
/cpu     about 0.3 s of pure Python, then the request's thread CPU time and its
         monotonic start and end (CLOCK_MONOTONIC: one clock for the test and the server)
/block   blocks the event loop (time.sleep) for ?seconds (default 0.5)
/daemon  starts a daemon thread that never ends (CPython cannot finalise its interpreter)
/import  imports the module named by the query string (an ImportError is the app's error)
Lifespan startup and shutdown each write one line naming the interpreter to stderr."""

from __future__ import annotations

import importlib
import json
import os
import threading
import time

from interpreter_id import current_interpreter, gil_kind

INTERPRETER = current_interpreter()
GIL = gil_kind()


def line(text: str) -> None:
    os.write(2, f"interpreters-app: {text}\n".encode())  # one write: lines never interleave


async def answer(send, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def burn() -> int:
    total = 0
    for i in range(3_000_000):
        total += i * i % 7
    return total


def blocking_sleep(seconds: float) -> None:
    time.sleep(seconds)


def forever() -> None:
    while True:
        time.sleep(0.05)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                line(f"lifespan startup in interpreter {INTERPRETER}")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                line(f"lifespan shutdown in interpreter {INTERPRETER}")
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    payload = {"interpreter": INTERPRETER, "pid": os.getpid(), "gil": GIL}
    if path == "/cpu":
        start, cpu0 = time.monotonic(), time.thread_time()
        burn()
        payload.update(cpu=time.thread_time() - cpu0, start=start, end=time.monotonic())
    elif path == "/block":
        query = scope["query_string"].decode()
        blocking_sleep(float(query) if query else 0.5)
    elif path == "/import":
        importlib.import_module(scope["query_string"].decode())
    elif path == "/daemon":
        threading.Thread(target=forever, name="forever", daemon=True).start()
    await answer(send, payload)
