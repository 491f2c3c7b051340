"""REST API and its documentation (included by nexus_sse.urls under "api/")."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from nexus_sse.api import views

router = SimpleRouter()
router.register("workflows", views.WorkflowViewSet, basename="api-workflow")
router.register("runs", views.RunViewSet, basename="api-run")

urlpatterns = [
    path("", include(router.urls)),
    path("stream-tokens/", views.StreamTokenView.as_view(), name="stream-token"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

docs_urlpatterns = [
    path("docs", SpectacularSwaggerView.as_view(url_name="nexus_sse:schema"), name="swagger-ui"),
    path("redoc", SpectacularRedocView.as_view(url_name="nexus_sse:schema"), name="redoc"),
]
