"""Python-side messages of the server (lifespan, task reports, start-up errors).

Once logging is set up (narwhal._logconfig) they go to the "uvicorn.error" logger, as
uvicorn's own messages do, so an app's handlers and a --log-config see them; before,
straight to the server's logger.
"""

from __future__ import annotations

import logging
import traceback

import _narwhal  # type: ignore[import-not-found]
from narwhal import _logconfig

DEBUG, INFO, WARNING, ERROR = 1, 2, 3, 4
_PYTHON_LEVELS = {DEBUG: logging.DEBUG, INFO: logging.INFO, WARNING: logging.WARNING,
                  ERROR: logging.ERROR}
_logger = logging.getLogger("uvicorn.error")


def _log(level: int, message: str, exc: BaseException | None = None) -> None:
    if _logconfig.installed:
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        _logger.log(_PYTHON_LEVELS[level], "%s", message, exc_info=exc_info)
        return
    if exc is not None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        message = f"{message}\n{text.rstrip()}"
    _narwhal.log(level, message)


def info(message: str) -> None:
    _log(INFO, message)


def warning(message: str) -> None:
    _log(WARNING, message)


def error(message: str) -> None:
    _log(ERROR, message)


def log_exception(message: str, exc: BaseException) -> None:
    _log(ERROR, message, exc)
