"""Django Channels: HTTP to Django, WebSocket to the consumers."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "channels_site.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi = get_asgi_application()  # sets Django up before the consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from channels_site.consumers import EchoConsumer, RoomConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi,
    "websocket": URLRouter([
        path("ws/echo/<str:name>/", EchoConsumer.as_asgi()),
        path("ws/room/<str:room>/", RoomConsumer.as_asgi()),
    ]),
})
