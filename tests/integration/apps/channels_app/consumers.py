"""Channels consumers for test_ws_clients.py.

`EchoConsumer` is a sync `WebsocketConsumer` (Channels runs it in a worker thread):
it echoes text and bytes; the text "close-4001" makes it close with code 4001.
`JsonConsumer` is an `AsyncJsonWebsocketConsumer` that answers each JSON message
with a JSON object. Both write what `disconnect` saw to the file named by the
`report` query parameter (the client cannot see it).
"""

from __future__ import annotations

import json
import os
import urllib.parse

from channels.generic.websocket import AsyncJsonWebsocketConsumer, WebsocketConsumer


def write_report(scope, payload) -> None:
    qs = dict(urllib.parse.parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    path = qs.get("report")
    if not path:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


class EchoConsumer(WebsocketConsumer):
    def connect(self):
        self.received = 0
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        self.received += 1
        if text_data == "close-4001":
            self.close(code=4001)
        elif text_data is not None:
            self.send(text_data=text_data)
        else:
            self.send(bytes_data=bytes_data)

    def disconnect(self, code):
        write_report(self.scope, {"consumer": "sync-echo", "code": code, "received": self.received})


class JsonConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.received = 0
        await self.accept()

    async def receive_json(self, content, **kwargs):
        self.received += 1
        numbers = content.get("numbers", []) if isinstance(content, dict) else []
        await self.send_json({"consumer": "async-json", "path": self.scope["path"],
                              "echo": content, "sum": sum(numbers)})

    async def disconnect(self, code):
        write_report(self.scope, {"consumer": "async-json", "code": code, "received": self.received})
