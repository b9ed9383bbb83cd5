import json

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse("hello from django", content_type="text/plain")


def info(request):
    return JsonResponse({
        "framework": "django",
        "method": request.method,
        "path": request.path,
        "query": request.GET.dict(),
    })


def number(request, n):
    return JsonResponse({"n": n, "double": n * 2})


@csrf_exempt
def echo(request):
    if request.method != "POST":
        return HttpResponse(status=405)
    content_type = request.META.get("CONTENT_TYPE", "")
    payload = {"content_type": content_type, "form": request.POST.dict()}
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        body = request.body
        payload["body"] = body.decode("utf-8")
        if content_type.startswith("application/json"):
            payload["json"] = json.loads(body)
    return JsonResponse(payload)
