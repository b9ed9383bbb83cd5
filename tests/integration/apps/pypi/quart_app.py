"""Current Quart: converters, JSON, a streamed generator response, file upload,
before/after_serving (Quart's lifespan), a WebSocket echo, and the URLs Quart derives
from the scope."""

import hashlib

import quart
import werkzeug
from quart import Quart, jsonify, request, url_for, websocket

from pypi_report import marker, versions

app = Quart(__name__)


@app.before_serving
async def startup() -> None:
    marker("quart", "lifespan startup")
    app.config["STARTED_BY"] = "quart before_serving"


@app.after_serving
async def shutdown() -> None:
    marker("quart", "lifespan shutdown")


@app.get("/version")
async def version():
    return versions(("quart", quart), ("werkzeug", werkzeug))


@app.get("/state")
async def state():
    return {"started_by": app.config["STARTED_BY"]}


@app.get("/items/<int:item_id>")
async def item(item_id: int):
    return {"item_id": item_id, "q": request.args.get("q")}


@app.post("/echo")
async def echo_json():
    body = await request.get_json()
    return jsonify({"received": body, "keys": sorted(body)})


@app.get("/stream")
async def stream():
    count = int(request.args.get("n", "5"))

    async def chunks():
        for i in range(count):
            yield f"chunk-{i}\n".encode()

    return chunks(), 200, {"content-type": "text/plain"}


@app.post("/upload")
async def upload():
    files = await request.files
    form = await request.form
    stored = files["file"]
    data = stored.read()
    return data, 200, {
        "content-type": "application/octet-stream",
        "x-filename": stored.filename,
        "x-note": form["note"],
        "x-sha256": hashlib.sha256(data).hexdigest(),
    }


@app.get("/where")
async def where():
    return {
        "url": request.url,
        "url_for": url_for("item", item_id=7, _external=True),
        "root_path": request.scope["root_path"],
        "path": request.scope["path"],
    }


@app.websocket("/ws")
async def ws_echo():
    while True:
        message = await websocket.receive()
        if message == "close":
            await websocket.close(4000, "asked to")
            return
        if isinstance(message, str):
            await websocket.send(f"quart: {message}")
        else:
            await websocket.send(message[::-1])
