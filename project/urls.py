"""Demo site URLs: nexus_sse at the root (as Nexus serves it), the admin, a home page."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import TemplateView

from project import views


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Send browsers that ask for /favicon.ico to the app's icon (pages without a link ask)."""
    # looked up per request, not at import: it follows STATIC_URL and the storage as they are then
    return HttpResponseRedirect(static("nexus_sse/favicon.svg"))


urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("demo/countdown", views.countdown, name="countdown"),
    path("demo/countdown/stats", views.countdown_stats, name="countdown-stats"),
    path("", include("nexus_sse.urls")),
]
