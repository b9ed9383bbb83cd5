"""Starlette's FileResponse served from the pinned venv, for the pathsend tests.

`/file` answers FileResponse of the file named by the `NARWHAL_TEST_FILE` environment
variable. A middleware records the type of every message the app sent for a request and
writes the list to the file named by the request's `x-report` header, so a test can
tell whether Starlette used http.response.pathsend or body messages.
"""

from __future__ import annotations

import json
import os

from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Route


async def file(request):
    return FileResponse(os.environ["NARWHAL_TEST_FILE"])


class RecordSends:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        sent: list[str] = []

        async def recording_send(message) -> None:
            sent.append(message["type"])
            await send(message)

        await self.app(scope, receive, recording_send)
        target = dict(scope["headers"]).get(b"x-report")
        if target:
            tmp = target.decode() + ".tmp"
            with open(tmp, "w") as f:
                json.dump(sent, f)
            os.replace(tmp, target.decode())


app = RecordSends(Starlette(routes=[Route("/file", file, methods=["GET", "HEAD"])]))
