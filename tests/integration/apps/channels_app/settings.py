"""Minimal Django 3.2 + Channels 4.0 settings: no database, production-like."""

SECRET_KEY = "narwhal-integration-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "urls"
INSTALLED_APPS = ["channels"]
MIDDLEWARE: list = []
DATABASES: dict = {}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ASGI_APPLICATION = "asgi.application"
