"""FastAPI app for the framework tests: query parameters, a pydantic body (422 on
invalid input), StreamingResponse, UploadFile and a startup handler setting state."""

import asyncio
import hashlib
from typing import List, Optional

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

app = FastAPI()


@app.on_event("startup")
async def startup() -> None:
    app.state.model_name = "loaded-at-startup"


class Item(BaseModel):
    name: str
    price: float
    tags: List[str] = []


@app.get("/items")
async def list_items(q: Optional[str] = None, limit: int = 10, request: Request = None):
    return {"q": q, "limit": limit, "model": request.app.state.model_name}


@app.post("/items")
async def create_item(item: Item):
    return {"name": item.name, "price": item.price, "tags": item.tags, "total": item.price * 2}


@app.get("/stream")
async def stream(n: int = 5):
    async def chunks():
        for i in range(n):
            yield f"line {i}\n"
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.post("/upload")
async def upload(file: UploadFile = File(...), note: str = Form(...)):
    data = await file.read()
    return {
        "filename": file.filename,
        "content_type": file.content_type,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": note,
    }
