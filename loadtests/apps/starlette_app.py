"""Starlette app with one route: GET / -> PlainTextResponse("Hello, world!").

`GET /versions` (after `/`, so it never slows the measured route's match) tells the
harness which Starlette this process imported.
"""

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from versions import versions


async def hello(request):
    return PlainTextResponse("Hello, world!")


async def report_versions(request):
    return Response(versions(), media_type="application/json")


app = Starlette(routes=[Route("/", hello), Route("/versions", report_versions)])
