"""Starlette alone, for tests/integration/test_interpreters.py: starlette_app.py also
imports uvloop (to report its version), which cannot be loaded in a sub-interpreter."""

import starlette
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from pypi_report import versions


async def version(request):
    return JSONResponse(versions(("starlette", starlette)))


app = Starlette(routes=[Route("/version", version)])
