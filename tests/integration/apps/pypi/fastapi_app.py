"""Current FastAPI with pydantic v2 models: path and query parameters, a validated body
(422 with pydantic v2's error shape), streaming, UploadFile, lifespan state, a WebSocket
echo, a mounted sub-application, and the URLs FastAPI derives from the scope."""

import asyncio
import contextlib
import hashlib
from typing import Annotated

import fastapi
import pydantic
import starlette
from fastapi import FastAPI, File, Form, Query, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, field_validator

from pypi_report import marker, versions


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    marker("fastapi", "lifespan startup")
    yield {"model_name": "loaded-at-startup"}
    marker("fastapi", "lifespan shutdown")


app = FastAPI(lifespan=lifespan)
sub = FastAPI()
app.mount("/sub", sub)


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []

    @field_validator("tags")
    @classmethod
    def lower_tags(cls, tags: list[str]) -> list[str]:
        return [t.lower() for t in tags]


class Priced(Item):
    total: float


@app.get("/version")
async def version():
    return versions(("fastapi", fastapi), ("pydantic", pydantic), ("starlette", starlette))


@app.get("/state")
async def state(request: Request):
    return {"model_name": request.state.model_name}


@app.get("/items/{item_id}", name="item")
async def read_item(item_id: int, q: str | None = None, limit: Annotated[int, Query(le=100)] = 10):
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items", response_model=Priced)
async def create_item(item: Item):
    return Priced(**item.model_dump(), total=item.price * 2)


@app.get("/stream")
async def stream(n: int = 5):
    async def chunks():
        for i in range(n):
            yield f"line {i}\n"
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.post("/upload")
async def upload(file: Annotated[UploadFile, File()], note: Annotated[str, Form()]):
    data = await file.read()
    return Response(data, media_type="application/octet-stream", headers={
        "x-filename": file.filename or "",
        "x-note": note,
        "x-sha256": hashlib.sha256(data).hexdigest(),
    })


@app.get("/where")
async def where(request: Request):
    return {
        "url": str(request.url),
        "url_for": str(request.url_for("item", item_id=7)),
        "root_path": request.scope["root_path"],
        "path": request.scope["path"],
    }


@app.websocket("/ws")
async def ws_echo(websocket: WebSocket, greeting: str = "fastapi"):
    await websocket.accept()
    try:
        while True:
            payload = await websocket.receive_json()
            await websocket.send_json({"greeting": greeting, "echo": payload})
    except WebSocketDisconnect:
        pass


@sub.get("/hello")
async def sub_hello(request: Request):
    return {"sub": "hello", "root_path": request.scope["root_path"]}
