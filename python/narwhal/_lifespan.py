"""The ASGI lifespan protocol, with uvicorn's auto/on/off semantics."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import _narwhal  # type: ignore[import-not-found]

from narwhal._log import error, info, log_exception


class Lifespan:
    def __init__(self, app: Callable, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.startup_failed = False
        self.shutdown_failed = False
        self.should_exit = False
        self.error_occured = False
        self._receive_queue: asyncio.Queue = asyncio.Queue()
        self._startup_event = asyncio.Event()
        self._shutdown_event = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def startup(self) -> bool:
        """Returns False when start-up failed and the server must not serve."""
        if self.mode == "off":
            return True
        info("Waiting for application startup.")
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._receive_queue.put({"type": "lifespan.startup"})
        await self._startup_event.wait()
        if self.startup_failed or (self.error_occured and self.mode == "on"):
            error("Application startup failed. Exiting.")
            return False
        if not self.error_occured:
            info("Application startup complete.")
        return True

    async def shutdown(self) -> None:
        if self.mode == "off" or self.error_occured or self._task is None:
            return
        info("Waiting for application shutdown.")
        await self._receive_queue.put({"type": "lifespan.shutdown"})
        await self._shutdown_event.wait()
        if self.shutdown_failed or (self.error_occured and self.mode == "on"):
            error("Application shutdown failed. Exiting.")
        else:
            info("Application shutdown complete.")

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            self.error_occured = True
            if self.startup_failed or self.shutdown_failed:
                return
            if self.mode == "auto":
                info("ASGI 'lifespan' protocol appears unsupported.")
            else:
                log_exception("Exception in 'lifespan' protocol", exc)
        finally:
            self._startup_event.set()
            self._shutdown_event.set()

    async def _receive(self) -> dict:
        return await self._receive_queue.get()

    async def _send(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._check(not self._startup_event.is_set(), kind)
            self._startup_event.set()
        elif kind == "lifespan.startup.failed":
            self._check(not self._startup_event.is_set(), kind)
            self.startup_failed = True
            self._startup_event.set()
            if message.get("message"):
                error(message["message"])
        elif kind == "lifespan.shutdown.complete":
            self._check(self._startup_event.is_set() and not self._shutdown_event.is_set(), kind)
            self._shutdown_event.set()
        elif kind == "lifespan.shutdown.failed":
            self._check(self._startup_event.is_set() and not self._shutdown_event.is_set(), kind)
            self.shutdown_failed = True
            self._shutdown_event.set()
            if message.get("message"):
                error(message["message"])
        else:
            raise RuntimeError(f"Unexpected ASGI lifespan message '{kind}'.")

    @staticmethod
    def _check(ok: bool, kind: Any) -> None:
        if not ok:
            raise RuntimeError(f"Unexpected ASGI lifespan message '{kind}'.")


__all__ = ["Lifespan", "_narwhal"]
