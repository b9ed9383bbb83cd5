"""A chat room on narwhal.pubsub, with Starlette.

    narwhal app:app --app-dir examples/pubsub_chat

GET  /                               a page with a chat client (plain JavaScript)
WS   /ws/{room}?name=NAME            joins the room: every socket in it receives what
                                     anyone says there, and who joins and leaves
GET  /rooms/{room}/announce?text=T   (or POST) an HTTP handler speaking to a room: how a
                                     backend pushes to the sockets

Each room is the topic "room:<room>". A socket subscribes to it once; from then on the
server writes every publication of the topic to the socket itself, without running
Python per subscriber, in every worker process (and, with --pubsub-redis, on every
server sharing the Redis).
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

try:
    from narwhal import pubsub  # present when narwhal runs the app
except ImportError:
    pubsub = None

PAGE = Path(__file__).with_name("index.html").read_text(encoding="utf-8")


def topic_of(room: str) -> str:
    return f"room:{room}"


# ---- Fallback for servers without narwhal.pubsub (uvicorn, ...) ----------------------
# The sockets of each topic in a set, and a publication is a send to each. It only
# reaches the sockets of this one process, and a slow client holds up the others.
local_rooms: dict[str, set[WebSocket]] = {}


async def local_publish(topic: str, text: str) -> None:
    for ws in list(local_rooms.get(topic, ())):
        try:
            await ws.send_text(text)
        except Exception:  # noqa: BLE001 - a socket that closed meanwhile
            local_rooms[topic].discard(ws)
# ---- end of the fallback ---------------------------------------------------------------


def native(conn: HTTPConnection) -> bool:
    return pubsub is not None and pubsub.available(conn.scope)


async def join(ws: WebSocket, topic: str) -> None:
    if native(ws):
        await pubsub.subscribe(ws, topic)
    else:
        local_rooms.setdefault(topic, set()).add(ws)


async def leave(ws: WebSocket, topic: str) -> None:
    # narwhal leaves every topic when the socket closes: nothing to do there.
    if not native(ws):
        local_rooms.get(topic, set()).discard(ws)


async def publish(conn: HTTPConnection, topic: str, text: str) -> None:
    if native(conn):
        await pubsub.publish(conn, topic, text)
    else:
        await local_publish(topic, text)


async def chat(websocket: WebSocket) -> None:
    room = websocket.path_params["room"]
    name = websocket.query_params.get("name") or "anonymous"
    topic = topic_of(room)
    await websocket.accept()
    await join(websocket, topic)
    await publish(websocket, topic, f"{name} joined")
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text"):  # text frames only; binary ones are ignored
                await publish(websocket, topic, f"{name}: {message['text']}")
    finally:
        await leave(websocket, topic)
        # The socket is closed by now; narwhal still takes its publications.
        await publish(websocket, topic, f"{name} left")


async def announce(request: Request) -> PlainTextResponse:
    text = request.query_params.get("text")
    if not text:
        return PlainTextResponse("the query needs text=...\n", status_code=400)
    room = request.path_params["room"]
    await publish(request, topic_of(room), text)
    return PlainTextResponse(f"announced to {room}\n")


async def page(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


app = Starlette(routes=[
    Route("/", page),
    WebSocketRoute("/ws/{room}", chat),
    Route("/rooms/{room}/announce", announce, methods=["GET", "POST"]),
])
