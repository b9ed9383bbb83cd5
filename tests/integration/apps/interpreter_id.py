"""Which interpreter of the process this code runs in: 0 for the main interpreter, the
sub-interpreter's id otherwise (CPython 3.12's _xxsubinterpreters, 3.13's _interpreters)."""

from __future__ import annotations


def current_interpreter() -> int:
    try:
        import _interpreters as interpreters  # type: ignore[import-not-found]
    except ImportError:
        try:
            import _xxsubinterpreters as interpreters  # type: ignore[import-not-found]
        except ImportError:  # CPython 3.11: one interpreter only
            return 0
    current = interpreters.get_current()
    if isinstance(current, tuple):  # 3.13: (id, whence)
        current = current[0]
    return int(current)


def gil_kind() -> str | None:
    """The running interpreter's GIL as CPython 3.13 reports it ("own" or "shared"); None
    where it cannot say (3.12 and older)."""
    try:
        import _interpreters as interpreters  # type: ignore[import-not-found]
    except ImportError:
        return None
    config = interpreters.get_config(current_interpreter())
    return getattr(config, "gil", None)
