"""Python's `logging`, set up the way uvicorn sets it up, and joined to narwhal's logger.

Without --log-config: the loggers "uvicorn", "uvicorn.error", "uvicorn.access" (and
"narwhal", for the watchdog and stats reports) get a handler that writes through
narwhal's own writer, at --log-level, with uvicorn's propagation. The root logger gets
the same handler (an app's logging.basicConfig still replaces it), so the app's records
come out in narwhal's format too.
narwhal's records keep their fast C++ path as long as the app leaves those loggers
alone; once it attaches a handler or a filter, changes a level or disables one, that
logger's records are forwarded through Python (python/log_bridge.cpp), so the app's
handlers and filters see every one of them.

With --log-config PATH (uvicorn's rules: .json, .yaml and .yml go to dictConfig,
anything else to fileConfig): the file decides, and every narwhal record goes through
Python's logging.

With --log-format json, the app's print()s and other writes to sys.stdout and
sys.stderr become JSON records too, one per line.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import threading
import time
from typing import Any, Callable

TRACE = 5  # uvicorn's level below DEBUG
# uvicorn's access message; record.args are (client_addr, method, full_path,
# http_version, status_code), which access filters written for uvicorn read.
ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'
# The bits of asgi/log.hpp's Logger, by logger name.
ERROR_BIT, ACCESS_BIT, NARWHAL_BIT = 1, 2, 4
ALL_BITS = ERROR_BIT | ACCESS_BIT | NARWHAL_BIT
_BITS = {"uvicorn": ERROR_BIT, "uvicorn.error": ERROR_BIT, "uvicorn.access": ACCESS_BIT,
         "narwhal": NARWHAL_BIT}

# Set by the native bridge (python/log_bridge.cpp) before install() runs.
_write: Callable[[int, str, str, str | None, float], None] | None = None
_forward: Callable[[int], None] | None = None

installed = False
_forwarded = 0


class LogConfigError(Exception):
    """--log-config cannot be applied; the message says why."""


def _forward_loggers(bits: int) -> None:
    global _forwarded
    if bits & ~_forwarded:
        _forwarded |= bits
        if _forward is not None:
            _forward(_forwarded)


class NarwhalHandler(logging.Handler):
    """Writes each record as one of narwhal's log lines (or JSON objects)."""

    _exc_formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + self._exc_formatter.formatException(record.exc_info)
            if record.stack_info:
                text += "\n" + self._exc_formatter.formatStack(record.stack_info)
            fields = getattr(record, "narwhal_fields", None)
            if _write is not None:
                _write(record.levelno, record.name, text, fields, record.created)
        except Exception:
            self.handleError(record)


# --- watching uvicorn's loggers ---------------------------------------------------------

_WATCHED_ATTRS = frozenset(("handlers", "filters", "level", "disabled", "propagate"))


class _WatchedList(list):
    """A watched logger's handlers or filters: any change customises the logger."""

    def __init__(self, items: Any, owner: "_WatchedLogger") -> None:
        super().__init__(items)
        self._owner = owner

    def _changed(self) -> None:
        self._owner._narwhal_customised()


def _notifying(name: str) -> Callable:
    method = getattr(list, name)

    def wrapper(self: _WatchedList, *args: Any) -> Any:
        result = method(self, *args)
        self._changed()
        return result

    wrapper.__name__ = name
    return wrapper


for _name in ("append", "extend", "insert", "remove", "pop", "clear", "__setitem__",
              "__delitem__", "__iadd__", "sort", "reverse"):
    setattr(_WatchedList, _name, _notifying(_name))


class _WatchedLogger(logging.Logger):
    """One of the loggers narwhal writes to. Until the app changes it, narwhal's records
    skip Python (they would come out the same); after, they are forwarded through it."""

    _narwhal_ready = False

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("handlers", "filters") and not isinstance(value, _WatchedList):
            value = _WatchedList(value, self)
        super().__setattr__(name, value)
        if name in _WATCHED_ATTRS:
            self._narwhal_customised()

    def _narwhal_customised(self) -> None:
        if self._narwhal_ready:
            _forward_loggers(_BITS.get(self.name, 0))


def _watched_logger(name: str) -> _WatchedLogger:
    manager = logging.Logger.manager
    existing = manager.loggerDict.get(name)
    if isinstance(existing, logging.Logger):
        logger = existing
        logger.__class__ = _WatchedLogger  # created before us: same layout, new behaviour
    else:
        previous = manager.loggerClass
        manager.loggerClass = _WatchedLogger
        try:
            logger = logging.getLogger(name)
        finally:
            manager.loggerClass = previous
    logger.handlers = list(logger.handlers)
    logger.filters = list(logger.filters)
    assert isinstance(logger, _WatchedLogger)
    return logger


_original_basic_config: Callable[..., None] | None = None


def _basic_config(**kwargs: Any) -> None:
    """logging.basicConfig, as if narwhal's root handler were not there: it does
    nothing when the root logger has handlers, and ours must not count."""
    root = logging.getLogger()
    if root.handlers and all(isinstance(h, NarwhalHandler) for h in root.handlers):
        for h in list(root.handlers):
            root.removeHandler(h)
    assert _original_basic_config is not None
    _original_basic_config(**kwargs)


def _default_config(level: int, access_log: bool) -> None:
    handler = NarwhalHandler()
    loggers = {name: _watched_logger(name) for name in _BITS}
    # uvicorn's LOGGING_CONFIG, with --log-level applied as uvicorn applies it.
    top = loggers["uvicorn"]
    top.handlers = [handler]
    top.setLevel(logging.INFO)
    top.propagate = False
    loggers["uvicorn.error"].setLevel(level)
    access = loggers["uvicorn.access"]
    access.handlers = [handler] if access_log else []
    access.setLevel(level)
    access.propagate = False
    own = loggers["narwhal"]
    own.handlers = [handler]
    own.setLevel(level)
    own.propagate = False
    # The root logger's records (and so an app logger's without handlers): narwhal's
    # format, instead of basicConfig's that logging.warning() would set up. An app that
    # calls basicConfig itself still gets its own setup: see _basic_config.
    logging.getLogger().addHandler(handler)
    global _original_basic_config
    if _original_basic_config is None:
        _original_basic_config = logging.basicConfig
        logging.basicConfig = _basic_config
    # Records of a logger that does not propagate and has no handler: the same, instead
    # of the bare print of Python's last resort.
    logging.lastResort = NarwhalHandler()
    for logger in loggers.values():
        logger._narwhal_ready = True


# --- --log-config -----------------------------------------------------------------------


def _apply_file(path: str, venv: str) -> None:
    if not os.path.isfile(path):
        raise LogConfigError(f"--log-config {path}: no such file")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".json":
            with open(path, encoding="utf-8") as f:
                logging.config.dictConfig(json.load(f))
        elif ext in (".yaml", ".yml"):
            # PyYAML may come from the app's virtualenv: the interpreter already started
            # as the venv's python, so its site-packages are on sys.path.
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                where = f"in the virtualenv {venv}" if venv else "to this Python"
                raise LogConfigError(
                    f"--log-config {path}: a YAML file needs PyYAML, which is not importable "
                    f"{where}: install it (Debian: apt-get install python3-yaml; a virtualenv: "
                    "pip install PyYAML), or give a .json or .ini file") from None
            with open(path, encoding="utf-8") as f:
                logging.config.dictConfig(yaml.safe_load(f))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    except LogConfigError:
        raise
    except Exception as e:
        raise LogConfigError(f"--log-config {path}: {type(e).__name__}: {e}") from None


# --- stdout and stderr as JSON records ------------------------------------------------


class _LineWriter(io.TextIOBase):
    """sys.stdout or sys.stderr in json mode: each complete line becomes one record."""

    def __init__(self, name: str, levelno: int, original: Any) -> None:
        super().__init__()
        self._name = name
        self._levelno = levelno
        self._original = original
        self._pending = ""
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # faulthandler and subprocess want a real descriptor; writes there stay raw.
        return self._original.fileno()

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        with self._lock:
            self._pending += s
            if "\n" not in self._pending:
                return len(s)
            *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._emit(line)
        return len(s)

    def flush(self) -> None:
        with self._lock:
            line, self._pending = self._pending, ""
        if line:
            self._emit(line)

    def _emit(self, line: str) -> None:
        if _write is not None:
            _write(self._levelno, self._name, line.rstrip("\r"), None, time.time())


def _capture_output() -> None:
    import sys

    sys.stdout = _LineWriter("stdout", logging.INFO, sys.__stdout__)
    sys.stderr = _LineWriter("stderr", logging.ERROR, sys.__stderr__)


def _whole_lines() -> None:
    """Text mode: sys.stderr writes whole lines. CPython's stderr writes through, so
    print() makes two writes, its text and then its newline, and narwhal's own lines
    (access lines, reports), written by other threads, land between them. Line buffering
    makes a printed line one write; a flush still writes a partial line at once."""
    import sys

    stream = sys.stderr
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(line_buffering=True, write_through=False)


# --- entry points -------------------------------------------------------------------------


def install(log_config: str, level: str, json_format: bool, access_log: bool, venv: str,
            app_dir: str = "") -> None:
    """Called once, before the app is imported (as uvicorn configures logging first).
    Raises LogConfigError when --log-config cannot be applied."""
    global installed
    logging.addLevelName(TRACE, "TRACE")
    levelno = TRACE if level == "trace" else logging.getLevelName(level.upper())
    if log_config:
        # As under uvicorn, the file may name the app's own handler and filter classes.
        import sys

        path = os.path.abspath(app_dir) if app_dir else os.getcwd()
        if path not in sys.path:
            sys.path.insert(0, path)
        _apply_file(log_config, venv or os.environ.get("VIRTUAL_ENV", ""))
        if not access_log:  # uvicorn's --no-access-log next to a config file
            access = logging.getLogger("uvicorn.access")
            access.handlers = []
            access.propagate = False
        _forward_loggers(ALL_BITS)
    else:
        _default_config(levelno, access_log)
    if json_format:
        _capture_output()
    else:
        _whole_lines()
    installed = True


def deliver(batch: list, dropped: int) -> None:
    """narwhal's forwarded records, from the bridge's delivery thread (GIL held):
    (levelno, logger, message, fields or None, created, access args or None) each."""
    for levelno, name, message, fields, created, args in batch:
        try:
            logger = logging.getLogger(name)
            if not logger.isEnabledFor(levelno):
                continue
            if args is not None:
                record = logger.makeRecord(name, levelno, "narwhal", 0, ACCESS_FORMAT, args, None)
            else:
                record = logger.makeRecord(name, levelno, "narwhal", 0, message, None, None)
            record.created = created
            record.msecs = (created - int(created)) * 1000
            record.narwhal_fields = fields
            logger.handle(record)
        except Exception as e:  # a broken handler must not stop the delivery
            if _write is not None:
                _write(logging.ERROR, "narwhal", f"Log delivery failed: {e!r}", None, time.time())
    if dropped:
        logging.getLogger("uvicorn.error").warning(
            "%d log records dropped: Python's logging did not keep up with the server", dropped)
