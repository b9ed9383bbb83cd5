"""Current Litestar: typed path and query parameters, a validated dataclass body (400
with Litestar's error body), a streamed response, multipart upload, lifespan state on
app.state, a WebSocket handler, and the URLs Litestar derives from the scope."""

import asyncio
import contextlib
import dataclasses
import hashlib
from typing import Annotated, AsyncIterator

import litestar
import msgspec
from litestar import Litestar, Request, Response, WebSocket, get, post, websocket
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import WebSocketDisconnect
from litestar.params import Body
from litestar.response import Stream

from pypi_report import marker, versions


@contextlib.asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    marker("litestar", "lifespan startup")
    app.state.started_by = "litestar lifespan"
    yield
    marker("litestar", "lifespan shutdown")


@dataclasses.dataclass
class Item:
    name: str
    price: float
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class UploadForm:
    file: UploadFile
    note: str


@get("/version")
async def version() -> dict:
    return versions(("litestar", litestar), ("msgspec", msgspec))


@get("/state")
async def state(request: Request) -> dict:
    return {"started_by": request.app.state.started_by}


@get("/items/{item_id:int}", name="item")
async def read_item(item_id: int, q: str | None = None) -> dict:
    return {"item_id": item_id, "q": q}


@post("/items")
async def create_item(data: Item) -> dict:
    return {**dataclasses.asdict(data), "total": data.price * 2}


@get("/stream")
async def stream(n: int = 5) -> Stream:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(n):
            yield f"chunk-{i}\n".encode()
            await asyncio.sleep(0)

    return Stream(chunks(), media_type="text/plain")


@post("/upload")
async def upload(data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)]) -> Response:
    content = await data.file.read()
    return Response(content, media_type="application/octet-stream", status_code=200, headers={
        "x-filename": data.file.filename,
        "x-note": data.note,
        "x-sha256": hashlib.sha256(content).hexdigest(),
    })


@get("/where")
async def where(request: Request) -> dict:
    return {
        "url": str(request.url),
        "url_for": request.url_for("item", item_id=7),
        "root_path": request.scope["root_path"],
        "path": request.scope["path"],
    }


@websocket("/ws")
async def ws_echo(socket: WebSocket) -> None:
    await socket.accept()
    try:
        while True:
            message = await socket.receive_data(mode="text")
            if message == "close":
                await socket.close(code=4000, reason="asked to")
                return
            await socket.send_data(f"litestar: {message}", mode="text")
    except WebSocketDisconnect:
        pass


app = Litestar(
    route_handlers=[version, state, read_item, create_item, stream, upload, where, ws_echo],
    lifespan=[lifespan],
)
