"""The `websockets` client, one spelling for both of its asyncio APIs.

Debian 12 ships websockets 10.4, whose `connect` is the legacy client; Debian 13 ships
15, whose `connect` is the new client (`websockets.asyncio.client`, since 13.0). They
differ in the names tests touch: request headers (`extra_headers` / `additional_headers`),
the rejected-handshake exception (`InvalidStatusCode.status_code` /
`InvalidStatus.response.status_code`), and where the handshake response and the
negotiated extensions live. The tests use only what this module exports (a bare
`websockets.connect` is the same client that HandshakeRejected belongs to).
"""

from __future__ import annotations

import asyncio
import inspect
import time

try:  # websockets >= 13
    from websockets.asyncio.client import connect as _connect
    from websockets.exceptions import InvalidStatus as HandshakeRejected

    _HEADERS_ARG = "additional_headers"

    def rejected_status(exc: HandshakeRejected) -> int:
        return exc.response.status_code

    def rejected_headers(exc: HandshakeRejected):
        return exc.response.headers

    def response_header(ws, name: str) -> str | None:
        return ws.response.headers.get(name)

    def extensions(ws) -> list:
        return list(ws.protocol.extensions)

except ImportError:  # the legacy client
    from websockets.client import connect as _connect
    from websockets.exceptions import InvalidStatusCode as HandshakeRejected

    _HEADERS_ARG = "extra_headers"

    def rejected_status(exc: HandshakeRejected) -> int:
        return exc.status_code

    def rejected_headers(exc: HandshakeRejected):
        return exc.headers

    def response_header(ws, name: str) -> str | None:
        return ws.response_headers.get(name)

    def extensions(ws) -> list:
        return list(ws.extensions)

# websockets 15 connects through a proxy named in the environment by default; the tests
# talk to a server on loopback and must not depend on the caller's proxy settings.
_NO_PROXY = {"proxy": None} if "proxy" in inspect.signature(_connect).parameters else {}


def connect(url: str, headers: list[tuple[str, str]] | None = None, **kw):
    """An `async with` connection to `url`; `headers` are added to the handshake request."""
    if headers:
        kw[_HEADERS_ARG] = headers
    return _connect(url, **_NO_PROXY, **kw)


class Collector:
    """A connected socket whose messages are collected in the background (`got`), and a
    wait for what has arrived. `name` starts a failure message; `describe(got)` says what
    came (all of it by default)."""

    GUARD = 30.0  # a failure guard for every wait, never a timing

    def __init__(self, ws, name: str, describe=None) -> None:
        self.ws, self.name = ws, name
        self.describe = describe or (lambda got: f"got {got}")
        self.got: list = []
        self.changed = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                self.got.append(message)
                self.changed.set()
        except Exception:  # noqa: BLE001 - the socket ended (a close, a killed worker): a
            pass  # failed check is reported by wait(), not here

    async def wait(self, predicate, what: str) -> None:
        deadline = time.monotonic() + self.GUARD
        while not predicate(self.got):
            left = deadline - time.monotonic()
            assert left > 0, (f"{self.name}: not within {self.GUARD}s: {what}; "
                              f"{self.describe(self.got)}")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except asyncio.TimeoutError:
                pass
