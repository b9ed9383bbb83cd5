"""Starlette app with one route: GET / -> PlainTextResponse("Hello, world!")."""

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):
    return PlainTextResponse("Hello, world!")


app = Starlette(routes=[Route("/", hello)])
