"""Apps that use Python's logging the way real apps do, for test_logging.py.

`app` leaves logging alone:
  GET /log      logs through the root logger, "uvicorn.error", "uvicorn.access" and an
                app logger without handlers, each message naming its logger; and prints
  GET /loggers  uvicorn's loggers as the app sees them (handlers, level, propagate)
  GET /hold     HoldingHandler (for --log-config) blocks on the next record it gets
  GET /release  ... until this
  anything else 200 "ok"

logging_watch_app.py imports it and does what apps do to uvicorn's access log when
imported: a handler that keeps every access record it is given (GET /seen returns
them, and the "uvicorn.error" records another one kept) and a filter that hides the
access lines of /hidden.
"""

from __future__ import annotations

import json
import logging
import sys
import threading


async def _send(send, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


def _loggers() -> dict:
    out = {}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        known = name in logging.Logger.manager.loggerDict
        logger = logging.getLogger(name)
        out[name] = {"known": known, "handlers": len(logger.handlers),
                     "level": logger.getEffectiveLevel(), "propagate": logger.propagate}
    out["stderr"] = {"line_buffering": sys.stderr.line_buffering,
                     "write_through": sys.stderr.write_through}
    return out


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/log":
        logging.warning("from-root %s", "warning")
        logging.getLogger("uvicorn.error").info("from-uvicorn-error info")
        logging.getLogger("uvicorn.access").info("from-uvicorn-access info")
        logging.getLogger("myapp.db").error("from-myapp error")
        print("from-print stdout")
        print("from-print stderr", file=sys.stderr)
        await _send(send, b"logged")
    elif path == "/loggers":
        await _send(send, json.dumps(_loggers()).encode(), b"application/json")
    elif path == "/hold":
        _hold.set()
        await _send(send, b"holding")
    elif path == "/release":
        _release.set()
        await _send(send, b"released")
    elif path == "/seen":
        body = json.dumps([{"logger": r.name,
                            "args": list(r.args) if isinstance(r.args, tuple) else None,
                            "message": r.getMessage()} for r in _seen]).encode()
        await _send(send, body, b"application/json")
    else:
        await _send(send, b"ok")


_seen: list[logging.LogRecord] = []


class _Keep(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _seen.append(record)


class _HideHidden(logging.Filter):
    """The usual health-check filter: uvicorn's access record.args[2] is the path."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) >= 3 and args[2] == "/hidden")


def watch() -> None:
    access = logging.getLogger("uvicorn.access")
    access.addHandler(_Keep())
    access.addFilter(_HideHidden())
    logging.getLogger("uvicorn.error").addHandler(_Keep())


_hold = threading.Event()
_release = threading.Event()


class HoldingHandler(logging.StreamHandler):
    """A handler that stops, as a handler writing to a stuck network sink does: after
    GET /hold, its next record waits for GET /release (at most a minute)."""

    def emit(self, record: logging.LogRecord) -> None:
        if _hold.is_set() and not _release.is_set():
            _release.wait(60)
        super().emit(record)
