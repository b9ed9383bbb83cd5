"""Django Channels project served as `asgi:application` with `--app-dir` = this folder."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi = get_asgi_application()  # sets Django up before the consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from consumers import EchoConsumer, JsonConsumer  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi,
    "websocket": URLRouter([
        path("ws/echo/", EchoConsumer.as_asgi()),
        path("ws/json/", JsonConsumer.as_asgi()),
    ]),
})
