"""Import the application named on the command line, the way uvicorn does."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from typing import Any, Callable


class LoadError(Exception):
    """The application could not be loaded; the message says why."""


def import_from_string(target: str) -> Any:
    module_str, _, attrs_str = target.partition(":")
    if not module_str or not attrs_str:
        raise LoadError(f'Import string "{target}" must be in format "<module>:<attribute>".')
    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        if exc.name != module_str:
            raise  # a module the app imports is missing: show the traceback
        raise LoadError(f'Could not import module "{module_str}".') from None
    obj: Any = module
    try:
        for attr in attrs_str.split("."):
            obj = getattr(obj, attr)
    except AttributeError:
        raise LoadError(f'Attribute "{attrs_str}" not found in module "{module_str}".') from None
    return obj


def _positional_params(fn: Callable) -> int:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return -1
    params = [
        p for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values()):
        return -1
    return len(params)


def is_asgi2(app: Any) -> bool:
    """An ASGI 2 app is a class or function taking one argument (the scope)."""
    if inspect.isclass(app):
        return _positional_params(app.__init__) == 2  # self, scope
    if inspect.isfunction(app) and not asyncio.iscoroutinefunction(app):
        return _positional_params(app) == 1
    return False


class ASGI2Middleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        instance = self.app(scope)
        await instance(receive, send)


FACTORY_DETECTED = (
    "ASGI app factory detected. Using it, but please consider setting the --factory flag explicitly."
)


def looks_like_factory(obj: Any) -> bool:
    """True when obj can be called with no arguments, so it cannot be an ASGI app.

    uvicorn calls every app once with no arguments and takes a TypeError to mean "not a
    factory". That also swallows a TypeError raised inside a real factory and calls apps
    that merely tolerate the call; asking the signature first does neither. An ASGI 3
    app takes (scope, receive, send), an ASGI 2 app (scope): neither binds to ().
    """
    if not callable(obj) or inspect.iscoroutinefunction(obj):
        return False  # calling it would only make a coroutine
    try:
        sig = inspect.signature(obj)
        sig.bind()
    except TypeError:
        return False  # needs arguments: an app, not a factory
    except ValueError:
        return False  # no signature to read (some builtins): leave it as it is
    # A catch-all (*args) is how wrappers and middleware forward (scope, receive, send):
    # binding with no arguments says nothing about them.
    return not any(p.kind == p.VAR_POSITIONAL for p in sig.parameters.values())


def load(target: str, factory: bool, interface: str) -> Callable:
    app = import_from_string(target)
    if factory:
        try:
            app = app()
        except TypeError as exc:
            raise LoadError(f"Error loading ASGI app factory: {exc}") from None
    elif looks_like_factory(app):
        from . import _log

        _log.warning(FACTORY_DETECTED)
        app = app()
    if not callable(app):
        raise LoadError(f'Attribute "{target}" is not callable.')
    if interface == "asgi2" or (interface == "auto" and is_asgi2(app)):
        app = ASGI2Middleware(app)
    return app


def add_venv(venv: str) -> None:
    """Put a virtualenv's site-packages ahead of the system ones."""
    import glob
    import os
    import site

    pattern = os.path.join(venv, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    for path in glob.glob(pattern):
        before = list(sys.path)
        site.addsitedir(path)
        added = [p for p in sys.path if p not in before]
        sys.path[:] = added + before
