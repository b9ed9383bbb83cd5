"""Current Starlette: routes with converters, JSON, streaming, multipart upload, a file
download (with Range), lifespan state, a WebSocket echo and a denied handshake, a mounted
sub-application, and the URLs Starlette derives from the scope (request.url, url_for,
the redirect for a missing trailing slash)."""

import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import tempfile

import starlette
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from pypi_report import marker, versions


# What /file serves; the tests make the same bytes from the same seed.
FILE_SIZE, FILE_SEED = 300_000, 9


@contextlib.asynccontextmanager
async def lifespan(app):
    marker("starlette", "lifespan startup")
    folder = tempfile.mkdtemp(prefix="narwhal-starlette-")
    path = os.path.join(folder, "download.bin")
    with open(path, "wb") as f:
        f.write(random.Random(FILE_SEED).randbytes(FILE_SIZE))
    try:
        yield {"started_by": "starlette lifespan", "file": path}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        marker("starlette", "lifespan shutdown")


async def version(request: Request) -> Response:
    return JSONResponse(versions(("starlette", starlette), ("uvloop", uvloop)))


async def state(request: Request) -> Response:
    return JSONResponse({"started_by": request.state.started_by})


async def item(request: Request) -> Response:
    return JSONResponse({"item_id": request.path_params["item_id"], "q": request.query_params.get("q")})


async def echo_json(request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"received": body, "keys": sorted(body)})


async def stream(request: Request) -> Response:
    count = int(request.query_params.get("n", "5"))

    async def chunks():
        for i in range(count):
            yield f"chunk-{i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


async def upload(request: Request) -> Response:
    """The uploaded file byte for byte; what else was sent goes in headers."""
    async with request.form() as form:
        upload = form["file"]
        data = await upload.read()
        return Response(data, media_type="application/octet-stream", headers={
            "x-filename": upload.filename,
            "x-note": form["note"],
            "x-sha256": hashlib.sha256(data).hexdigest(),
        })


async def download(request: Request) -> Response:
    # Several body messages under one Content-Length (no pathsend: narwhal offers none).
    return FileResponse(request.state.file, media_type="application/octet-stream")


async def where(request: Request) -> Response:
    return JSONResponse({
        "url": str(request.url),
        "base_url": str(request.base_url),
        "url_for": str(request.url_for("item", item_id=7)),
        "root_path": request.scope["root_path"],
        "path": request.scope["path"],
    })


async def slash(request: Request) -> Response:
    return PlainTextResponse("with slash")


async def sub_hello(request: Request) -> Response:
    return JSONResponse({"sub": "hello", "url_for": str(request.url_for("sub:hello"))})


async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                if message["text"] == "close":
                    await websocket.close(code=4000, reason="asked to")
                    return
                await websocket.send_text(f"starlette: {message['text']}")
            else:
                await websocket.send_bytes(message["bytes"][::-1])
    except WebSocketDisconnect:
        pass


async def ws_deny(websocket: WebSocket) -> None:
    """Refuse the handshake with an HTTP response of the app's own (denial response)."""
    await websocket.send_denial_response(
        PlainTextResponse("no entry", status_code=403, headers={"x-why": "denied by app"}))


app = Starlette(
    routes=[
        Route("/version", version),
        Route("/state", state),
        Route("/items/{item_id:int}", item, name="item"),
        Route("/echo", echo_json, methods=["POST"]),
        Route("/stream", stream),
        Route("/upload", upload, methods=["POST"]),
        Route("/file", download),
        Route("/where", where),
        Route("/slash/", slash),
        Mount("/sub", routes=[Route("/hello", sub_hello, name="hello")], name="sub"),
        WebSocketRoute("/ws", ws_echo),
        WebSocketRoute("/ws-deny", ws_deny),
    ],
    lifespan=lifespan,
)
