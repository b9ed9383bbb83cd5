"""Django LTS settings for the current-release tests: no database, production-like, with
CommonMiddleware so that a missing trailing slash is redirected (APPEND_SLASH)."""

SECRET_KEY = "narwhal-integration-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "django_site.urls"
INSTALLED_APPS: list = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict = {}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
