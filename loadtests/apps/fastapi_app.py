"""FastAPI on pydantic v2: POST /items validates a JSON body into a model and returns it.

A typical small API call: FastAPI reads the body, pydantic-core validates it into
`Item` (types, bounds, no unknown keys), the handler returns the model and FastAPI
serialises it through the declared return type. Under pydantic v1 (Debian 12's
FastAPI 0.92) the same code would run but mean something else (pydantic 1.10 even has
a `ConfigDict`, and turns `model_config` into a field), so the module refuses to load.

`GET /versions` tells the harness which FastAPI/pydantic this process imported.
"""

import pydantic
from fastapi import FastAPI, Response
from pydantic import BaseModel, ConfigDict, Field

from versions import versions

if int(pydantic.VERSION.split(".")[0]) < 2:
    raise ImportError(f"fastapi_app needs pydantic v2, this is pydantic {pydantic.VERSION}")


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    price: float = Field(gt=0)
    quantity: int = Field(ge=0, le=1000)
    tags: list[str] = Field(default_factory=list, max_length=8)


app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/items")
async def create_item(item: Item) -> Item:
    return item


@app.get("/versions")
async def report_versions() -> Response:
    return Response(versions(), media_type="application/json")
