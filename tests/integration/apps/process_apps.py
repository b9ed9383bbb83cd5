"""Apps that look at the process narwhal gives them: signal dispositions, a closed
pipe, sys.executable / sys.prefix / sys.path, child processes.

`describe_signals()` is also imported by the tests into a plain `python`, to compare."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor


def describe_signals() -> dict[str, str]:
    """signal.getsignal() for every signal, by name, as comparable text."""
    out = {}
    for sig in sorted(signal.valid_signals()):
        try:
            handler = signal.getsignal(sig)
        except (OSError, ValueError):
            continue
        if handler is signal.SIG_DFL:
            text = "SIG_DFL"
        elif handler is signal.SIG_IGN:
            text = "SIG_IGN"
        elif handler is None:
            text = "None"
        else:
            text = getattr(handler, "__qualname__", repr(handler))
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(int(sig))
        out[name] = text
    return out


def square(x: int) -> int:
    return x * x


def _write_to_closed_pipe() -> str:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        os.write(write_end, b"nobody reads this")
        return "no error"
    except BaseException as exc:
        return type(exc).__name__
    finally:
        os.close(write_end)


def _run_child() -> dict:
    done = subprocess.run([sys.executable, "-c", "import sys; print(sys.version_info[:2])"],
                          capture_output=True, text=True, timeout=60)
    return {"returncode": done.returncode, "stdout": done.stdout.strip(),
            "stderr": done.stderr[-2000:]}


async def _spawn_pool() -> list[int]:
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return [await loop.run_in_executor(pool, square, n) for n in (2, 3)]


def _paths() -> dict:
    return {"executable": sys.executable, "base_executable": getattr(sys, "_base_executable", None),
            "prefix": sys.prefix, "base_prefix": sys.base_prefix, "path": sys.path,
            "version": list(sys.version_info[:3])}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    path = scope["path"]
    if path == "/broken-pipe":
        body = _write_to_closed_pipe()
    elif path == "/signals":
        body = describe_signals()
    elif path == "/paths":
        body = _paths()
    elif path == "/child":
        body = await asyncio.get_running_loop().run_in_executor(None, _run_child)
    elif path == "/spawn":
        body = await _spawn_pool()
    else:
        body = "ok"
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})
