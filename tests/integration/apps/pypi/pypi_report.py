"""What the apps in this folder report about themselves: which release of each package
they imported, from which file, and a log marker for lifespan events. The tests compare
the versions with tests/requirements/frameworks.txt and the files with the venv's path."""

from __future__ import annotations

import asyncio
import importlib.metadata
import sys
from types import ModuleType
from typing import Any


def describe(dist: str, module: ModuleType) -> dict[str, Any]:
    distribution = importlib.metadata.distribution(dist)
    return {
        "dist": dist,
        "version": distribution.version,
        "file": module.__file__,
        # The folder holding the metadata the version was read from: the same
        # site-packages as the module.
        "metadata": str(distribution.locate_file("")),
    }


def versions(*pairs: tuple[str, ModuleType]) -> dict[str, Any]:
    """Called from a request handler: also names the class of the loop it runs on."""
    loop = type(asyncio.get_running_loop())
    return {"python": sys.version.split()[0], "loop": f"{loop.__module__}.{loop.__qualname__}",
            "packages": [describe(d, m) for d, m in pairs]}


def marker(app: str, event: str) -> None:
    """A line in the server's log (stderr) that the tests wait for."""
    print(f"pypi-app {app}: {event}", file=sys.stderr, flush=True)
