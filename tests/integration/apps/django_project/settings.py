"""Minimal Django 3.2 settings: no database, no installed apps, production-like."""

SECRET_KEY = "narwhal-integration-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "django_project.urls"
INSTALLED_APPS: list = []
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES: dict = {}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
