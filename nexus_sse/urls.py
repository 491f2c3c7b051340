"""URLs of the wire contract. Mount under any prefix: ``path("nexus/", include("nexus_sse.urls"))``."""

from django.urls import include, path

from nexus_sse import chat, health, views
from nexus_sse.api.urls import docs_urlpatterns

app_name = "nexus_sse"

# Run ids are matched as text and checked by the view: a malformed one is our JSON 404, not
# Django's HTML page.
urlpatterns = [
    path("workflows/<str:name>/execute", views.execute, name="execute"),
    path("runs/<str:run_id>", views.run_detail, name="run-detail"),
    path("runs/<str:run_id>/events", views.run_events, name="run-events"),
    path("runs/<str:run_id>/cancel", views.run_cancel, name="run-cancel"),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", health.metrics_view, name="metrics"),
    path("chat/", chat.chat_page, name="chat"),
    path("chat/<str:workflow>/", chat.chat_page, name="chat-workflow"),
    path("api/", include("nexus_sse.api.urls")),
    *docs_urlpatterns,
]
