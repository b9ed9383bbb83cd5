"""Python-side messages go through the server's logger, not stdout."""

from __future__ import annotations

import traceback

import _narwhal  # type: ignore[import-not-found]

DEBUG, INFO, WARNING, ERROR = 1, 2, 3, 4


def info(message: str) -> None:
    _narwhal.log(INFO, message)


def warning(message: str) -> None:
    _narwhal.log(WARNING, message)


def error(message: str) -> None:
    _narwhal.log(ERROR, message)


def log_exception(message: str, exc: BaseException) -> None:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    _narwhal.log(ERROR, f"{message}\n{text.rstrip()}")
