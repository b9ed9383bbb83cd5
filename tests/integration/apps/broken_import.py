"""Importing this module fails: start-up must report it and exit before serving."""


def _explode():
    raise RuntimeError("broken_import exploded on purpose")


_explode()

app = None
