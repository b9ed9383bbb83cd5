"""`EchoConsumer` (async): echoes text with the URL's name and reverses bytes; the text
"close" makes it close with code 4000. `RoomConsumer` (async JSON): joins a group of the
in-memory channel layer; each message is broadcast to every member of the room."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer


class EchoConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.name = self.scope["url_route"]["kwargs"]["name"]
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        if text_data == "close":
            await self.close(code=4000)
        elif text_data is not None:
            await self.send(text_data=f"{self.name}: {text_data}")
        else:
            await self.send(bytes_data=bytes_data[::-1])


class RoomConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        await self.channel_layer.group_add(self.room, self.channel_name)
        await self.accept()
        await self.send_json({"joined": self.room})

    async def disconnect(self, code):
        await self.channel_layer.group_discard(self.room, self.channel_name)

    async def receive_json(self, content, **kwargs):
        await self.channel_layer.group_send(self.room, {"type": "room.message", "content": content})

    async def room_message(self, event):
        await self.send_json({"room": self.room, "message": event["content"]})
