"""The framework versions an app process really imported, for the harness's pre-check.

The framework scenarios must run the versions the harness means them to run (the
pinned virtualenv's on narwhal, uvicorn-pypi and granian; Debian's on Debian's
uvicorn). A `GET /versions` route answers this JSON, so a server that picked up the
wrong site-packages is caught before anything is measured. Only modules already
imported are reported: importing more here would change the process being measured.
"""

import json
import sys

PACKAGES = ("starlette", "fastapi", "pydantic", "uvloop")


def versions() -> bytes:
    found = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        module = sys.modules.get(name)
        if module is not None:
            version = getattr(module, "__version__", None) or getattr(module, "VERSION", None)
            found[name] = None if version is None else str(version)
    return json.dumps(found, sort_keys=True).encode()
