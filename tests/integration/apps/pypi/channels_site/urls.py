from django.http import JsonResponse
from django.urls import path

import channels
import django
from pypi_report import versions


async def version(request):
    return JsonResponse(versions(("channels", channels), ("django", django)))


urlpatterns = [path("version", version)]
