"""A site that mounts nexus_sse under prefixes, twice (the second with its own namespace)."""

from django.urls import include, path

urlpatterns = [
    path("nexus/api/", include("nexus_sse.urls")),
    path("second/", include("nexus_sse.urls", namespace="second")),
]
