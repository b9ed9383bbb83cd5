"""logging_apps.app, with the root logger set up by the app with logging.basicConfig when
it is imported, as small apps do."""

import logging

from logging_apps import app

logging.basicConfig(level=logging.INFO, format="BASIC %(levelname)s %(name)s %(message)s")

__all__ = ["app"]
