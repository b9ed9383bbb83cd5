"""Falcon 3 ASGI app for the framework tests."""

import falcon
import falcon.asgi


class Hello:
    async def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "hello from falcon"


class Things:
    async def on_get(self, req, resp, thing_id):
        resp.media = {"framework": "falcon", "thing_id": thing_id, "color": req.get_param("color")}

    async def on_post(self, req, resp, thing_id):
        media = await req.get_media()
        resp.status = falcon.HTTP_201
        resp.media = {"thing_id": thing_id, "received": media}


app = falcon.asgi.App()
app.add_route("/hello", Hello())
app.add_route("/things/{thing_id:int}", Things())
