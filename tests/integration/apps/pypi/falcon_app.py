"""Current Falcon's ASGI app: resources with typed path fields, JSON media, a streamed
body, a multipart upload, lifespan through middleware, and the URI Falcon derives from
the scope."""

import asyncio
import hashlib

import falcon
import falcon.asgi

from pypi_report import marker, versions


class Lifespan:
    async def process_startup(self, scope, event):
        marker("falcon", "lifespan startup")
        STATE["started_by"] = "falcon process_startup"

    async def process_shutdown(self, scope, event):
        marker("falcon", "lifespan shutdown")


STATE: dict = {}


class Version:
    async def on_get(self, req, resp):
        resp.media = versions(("falcon", falcon))


class State:
    async def on_get(self, req, resp):
        resp.media = dict(STATE)


class Item:
    async def on_get(self, req, resp, item_id: int):
        resp.media = {"item_id": item_id, "q": req.get_param("q")}

    async def on_put(self, req, resp, item_id: int):
        body = await req.get_media()
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise falcon.HTTPBadRequest(title="Invalid item", description="name must be a string")
        resp.status = falcon.HTTP_201
        resp.media = {"item_id": item_id, "received": body}


class Stream:
    async def on_get(self, req, resp):
        count = req.get_param_as_int("n", default=5)

        async def chunks():
            for i in range(count):
                yield f"chunk-{i}\n".encode()
                await asyncio.sleep(0)

        resp.content_type = falcon.MEDIA_TEXT
        resp.stream = chunks()


class Upload:
    async def on_post(self, req, resp):
        form = await req.get_media()
        fields: dict = {}
        async for part in form:
            if part.name == "file":
                fields["filename"] = part.filename
                fields["data"] = await part.stream.read()
            else:
                fields[part.name] = await part.get_text()
        data = fields["data"]
        resp.content_type = "application/octet-stream"
        resp.set_header("x-filename", fields["filename"])
        resp.set_header("x-note", fields["note"])
        resp.set_header("x-sha256", hashlib.sha256(data).hexdigest())
        resp.data = data


class Where:
    async def on_get(self, req, resp):
        resp.media = {
            "url": req.uri,
            "relative_uri": req.relative_uri,
            "path": req.path,
            "root_path": req.root_path,
        }


app = falcon.asgi.App(middleware=[Lifespan()])
app.add_route("/version", Version())
app.add_route("/state", State())
app.add_route("/items/{item_id:int}", Item())
app.add_route("/stream", Stream())
app.add_route("/upload", Upload())
app.add_route("/where", Where())
