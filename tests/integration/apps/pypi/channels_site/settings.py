"""Django + Channels settings: no database, in-memory channel layer, production-like."""

SECRET_KEY = "narwhal-integration-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "channels_site.urls"
INSTALLED_APPS = ["channels"]
MIDDLEWARE: list = []
DATABASES: dict = {}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ASGI_APPLICATION = "channels_site.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
