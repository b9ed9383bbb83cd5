"""Helpers the test apps share: the plain lifespan protocol, reading the query and headers
of a scope, and writing a JSON report (atomically, via rename) where the test can wait for
it."""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any, MutableMapping

Scope = MutableMapping[str, Any]


async def lifespan(receive: Any, send: Any) -> None:
    """Completes the lifespan startup and shutdown, doing nothing else."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def query(scope: Scope) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


def header(scope: Scope, name: str) -> str | None:
    key = name.lower().encode("latin-1")
    for k, v in scope["headers"]:
        if bytes(k) == key:
            return bytes(v).decode("latin-1")
    return None


def write_report(path: str | None, payload: Any) -> None:
    """Write `payload` as JSON to `path` (nothing when there is no path)."""
    if not path:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


def report_to_header(scope: Scope, payload: Any) -> None:
    """Write `payload` to the file named by the request's `x-report` header (if any)."""
    write_report(header(scope, "x-report"), payload)
