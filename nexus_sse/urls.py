"""URLs of the wire contract. Mount under any prefix: ``path("nexus/", include("nexus_sse.urls"))``."""

from django.urls import path

from nexus_sse import views

app_name = "nexus_sse"

urlpatterns = [
    path("workflows/<str:name>/execute", views.execute, name="execute"),
    path("runs/<uuid:run_id>", views.run_detail, name="run-detail"),
    path("runs/<uuid:run_id>/events", views.run_events, name="run-events"),
    path("runs/<uuid:run_id>/cancel", views.run_cancel, name="run-cancel"),
]
