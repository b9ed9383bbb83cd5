"""narwhal: an ASGI server in C++. This package runs inside the server process."""

from narwhal._errors import ClientDisconnected

__all__ = ["ClientDisconnected", "__version__"]

try:
    from _narwhal import version as __version__  # type: ignore[import-not-found]
except ImportError:  # imported outside the server
    __version__ = "unknown"
