"""Async views: Django runs them on the server's event loop (no thread hop)."""

import asyncio
import hashlib
import json

import asgiref
import django
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.urls import reverse

from pypi_report import versions


async def version(request):
    return JsonResponse(versions(("django", django), ("asgiref", asgiref)))


async def item(request, item_id):
    return JsonResponse({"item_id": item_id, "q": request.GET.get("q"),
                         "async_view_on_loop": _on_running_loop()})


async def echo_json(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    body = json.loads(request.body)
    return JsonResponse({"received": body, "keys": sorted(body)})


async def stream(request):
    count = int(request.GET.get("n", "5"))

    async def chunks():
        for i in range(count):
            yield f"chunk-{i}\n".encode()
            await asyncio.sleep(0)

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def upload(request):
    stored = request.FILES["file"]
    data = stored.read()
    response = HttpResponse(data, content_type="application/octet-stream")
    response["x-filename"] = stored.name
    response["x-note"] = request.POST["note"]
    response["x-sha256"] = hashlib.sha256(data).hexdigest()
    return response


async def where(request):
    return JsonResponse({
        "url": request.build_absolute_uri(),
        "reverse": reverse("item", args=[7]),
        "request_path": request.path,
        "path_info": request.path_info,
        "script_name": request.META["SCRIPT_NAME"],
    })


async def slash(request):
    return HttpResponse("with slash", content_type="text/plain")


def _on_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
