"""logging_apps.app, with a handler and a filter attached to "uvicorn.access" when it is
imported, as apps that count or hide access lines do."""

from logging_apps import app, watch

watch()

__all__ = ["app"]
