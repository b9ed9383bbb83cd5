"""Starlette app with one route: GET / -> FileResponse of a 1 MiB file.

The file's bytes are `file_bytes()` (a fixed pseudo-random sequence, so the harness
knows the answer without sharing a file); the first process to import the app writes
them to the temporary directory, under a name that says what they are. A server that
offers http.response.pathsend gets the path and sends the file itself; others get it
in Starlette's 64 KiB body messages.
"""

import os
import random
import tempfile

from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from versions import versions

SIZE, SEED = 1024 * 1024, 1  # scenarios.py's file1m answer is the same bytes


def file_bytes() -> bytes:
    return random.Random(SEED).randbytes(SIZE)


def _write_file() -> str:
    path = os.path.join(tempfile.gettempdir(), f"narwhal-loadtest-{SIZE}-{SEED}.bin")
    data = file_bytes()
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return path
    except FileNotFoundError:
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # atomic: a concurrent worker sees the old file or the whole new one
    return path


PATH = _write_file()
# Stat once: the file never changes, and without it FileResponse stats in anyio's thread
# pool, which granian's rust task implementation cannot run ("Future object is not
# initialized" from asyncio.all_tasks). What is measured is the sending of the file.
STAT = os.stat(PATH)


async def file(request):
    return FileResponse(PATH, media_type="application/octet-stream", stat_result=STAT)


async def report_versions(request):
    return Response(versions(), media_type="application/json")


app = Starlette(routes=[Route("/", file), Route("/versions", report_versions)])
