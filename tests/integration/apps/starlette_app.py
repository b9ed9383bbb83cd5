"""Starlette app for the framework tests: text, JSON, streaming, multipart upload,
path parameters and request.state filled from lifespan state."""

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


@contextlib.asynccontextmanager
async def lifespan(app):
    # Starlette >= 0.26: the yielded dict becomes the lifespan state that the server
    # copies into every request's scope["state"].
    yield {"greeting": "hello from lifespan", "started": True}


async def text(request: Request) -> Response:
    return PlainTextResponse("hello from starlette")


async def json_endpoint(request: Request) -> Response:
    return JSONResponse({"framework": "starlette", "ok": True, "query": dict(request.query_params)})


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("n", "5"))

    async def chunks():
        for i in range(count):
            yield f"chunk-{i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


async def upload(request: Request) -> Response:
    """Echo the uploaded file byte for byte; metadata goes in headers."""
    form = await request.form()
    upload = form["file"]
    data = await upload.read()
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "x-filename": upload.filename,
            "x-file-content-type": upload.content_type or "",
            "x-note": form.get("note", ""),
            "x-size": str(len(data)),
        },
    )


async def item(request: Request) -> Response:
    return JSONResponse({"item_id": request.path_params["item_id"]})


async def user(request: Request) -> Response:
    return JSONResponse({"name": request.path_params["name"], "raw_path": request.scope["raw_path"].decode("latin-1")})


async def state(request: Request) -> Response:
    return JSONResponse({"greeting": request.state.greeting, "started": request.state.started})


app = Starlette(
    routes=[
        Route("/text", text),
        Route("/json", json_endpoint),
        Route("/stream", stream),
        Route("/upload", upload, methods=["POST"]),
        Route("/items/{item_id:int}", item),
        Route("/users/{name}", user),
        Route("/state", state),
    ],
    lifespan=lifespan,
)
