"""Demo site URLs: nexus_sse at the root (as Nexus serves it), the admin, a home page."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from project import views

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/", admin.site.urls),
    path("demo/countdown", views.countdown, name="countdown"),
    path("demo/countdown/stats", views.countdown_stats, name="countdown-stats"),
    path("", include("nexus_sse.urls")),
]
