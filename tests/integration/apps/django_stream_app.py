"""A one-file Django site whose view streams a sync generator that sleeps per chunk:
StreamingHttpResponse over a blocking iterator, the classic way to block an event loop
once per chunk. `django_stream_app:application`; GET /stream?n=CHUNKS&s=SECONDS&size=BYTES (each chunk
`size` bytes: chunks over the server's send buffer make send() wait for the socket, so
the loop turns between chunks and each chunk's sleep is a stall of its own).

Django before 4.2 (Debian 12's 3.2) iterates a streaming response's sync iterator on
the event loop; 4.2 and later consume it in a worker thread instead.
"""

from __future__ import annotations

import time

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="django-stream-app-test-key",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=[],
    INSTALLED_APPS=[],
)
django.setup()

from django.core.asgi import get_asgi_application  # noqa: E402 - needs the settings
from django.http import StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


def slow_chunks(count: int, seconds: float, size: int):
    for i in range(count):
        time.sleep(seconds)  # blocking, on whatever thread iterates the response
        line = f"chunk {i}\n".encode()
        yield line + b"." * max(0, size - len(line) - 1) + b"\n"


def stream(request):
    count = int(request.GET.get("n", "32"))
    seconds = float(request.GET.get("s", "0.15"))
    size = int(request.GET.get("size", "0"))
    return StreamingHttpResponse(slow_chunks(count, seconds, size), content_type="text/plain")


urlpatterns = [path("stream", stream)]

application = get_asgi_application()
