from django.urls import path

from . import views

urlpatterns = [
    path("version", views.version),
    path("items/<int:item_id>", views.item, name="item"),
    path("echo", views.echo_json),
    path("stream", views.stream),
    path("upload", views.upload),
    path("where", views.where),
    path("slash/", views.slash),
]
