"""REST API views: workflows (registry), runs (history, cancel) and stream tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync
from django.apps import apps
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from nexus_sse import access, conf, runs, stream_tokens
from nexus_sse.api import errors
from nexus_sse.api.parsers import LimitedJSONParser
from nexus_sse.api.serializers import (
    RunDetailSerializer,
    RunSerializer,
    StreamTokenRequestSerializer,
    StreamTokenSerializer,
    WorkflowSerializer,
)
from nexus_sse.exceptions import NotFound, PermissionDenied, ValidationError
from nexus_sse.models import Run, Workflow


def authentication_classes() -> list[type]:
    classes: list[type] = [SessionAuthentication]
    if apps.is_installed("rest_framework.authtoken"):
        from rest_framework.authentication import TokenAuthentication

        classes.append(TokenAuthentication)
    return classes


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class NexusAPIMixin:
    """Our authentication, pagination and error body, whatever the site's REST_FRAMEWORK says."""

    pagination_class: type[BasePagination] | None = Pagination
    # JSON only, within MAX_BODY_BYTES / MAX_JSON_DEPTH
    parser_classes: Sequence[type[BaseParser]] = (LimitedJSONParser,)

    def get_authenticators(self) -> list:
        return [cls() for cls in authentication_classes()]

    def get_exception_handler(self):
        return errors.handle


class WorkflowPermissions(permissions.DjangoModelPermissions):
    """Anyone may read; writing needs the model permissions (add/change/delete workflow)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return super().has_permission(request, view)


class WorkflowViewSet(NexusAPIMixin, viewsets.ModelViewSet):
    """Workflows: everyone sees the active ones they may run; staff see all."""

    serializer_class = WorkflowSerializer
    permission_classes = [WorkflowPermissions]
    lookup_field = "slug"
    queryset = Workflow.objects.all()

    def get_queryset(self) -> QuerySet:
        queryset = Workflow.objects.order_by("slug")
        user = self.request.user
        if user.is_staff:
            return queryset
        visible = [w.pk for w in queryset.filter(is_active=True) if access.may_execute(user, w)]
        return queryset.filter(pk__in=visible)

    def perform_destroy(self, instance: Workflow) -> None:
        if instance.source == Workflow.Source.CODE:
            raise ValidationError(
                "workflows defined in code cannot be deleted; disable them instead", path="source"
            )
        instance.delete()


@extend_schema(
    parameters=[
        OpenApiParameter("workflow", str, description="Only runs of this workflow (slug)."),
        OpenApiParameter("status", str, enum=[s.value for s in Run.Status]),
        OpenApiParameter("created_after", str, description="ISO 8601 date-time."),
        OpenApiParameter("created_before", str, description="ISO 8601 date-time."),
    ]
)
class RunViewSet(NexusAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs: a user sees their own; staff see all. Anonymous runs are reachable only by their id."""

    permission_classes = [permissions.AllowAny]
    queryset = Run.objects.all()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # as views.get_run does: after a restart, no run of a dead executor may look alive here either
        async_to_sync(runs.recover_interrupted_once)()

    def get_serializer_class(self) -> type:
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    def get_queryset(self) -> QuerySet:
        queryset = Run.objects.select_related("workflow").order_by("-created_at")
        user = self.request.user
        if self.action == "list":
            if not user.is_authenticated:
                return queryset.none()  # (before the filters: nothing to refuse in an empty list)
            queryset = access.listed_runs(user, queryset)
            params = self.request.query_params
            filters = {
                "workflow__slug": params.get("workflow"),
                "status": params.get("status"),
                "created_at__gte": params.get("created_after"),
                "created_at__lte": params.get("created_before"),
            }
            try:
                return queryset.filter(**{k: v for k, v in filters.items() if v})
            except Exception as exc:  # a malformed date
                raise ValidationError(f"bad filter: {exc}", path="query") from None
        return queryset.prefetch_related("events")

    def get_object(self) -> Run:
        run = super().get_object()
        if not access.can_see_run(self.request.user, run):
            raise NotFound("no such run")
        return run

    @extend_schema(request=None, responses={200: RunSerializer, 202: RunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Stop a run; its stream ends with an error event of type CancelledError."""
        run = self.get_object()
        state = async_to_sync(runs.cancel)(run)
        return Response(
            {"run_id": str(run.pk), "status": state},
            status=status.HTTP_202_ACCEPTED if state == "cancelling" else status.HTTP_200_OK,
        )


class StreamTokenView(NexusAPIMixin, APIView):
    """Issue a short-lived signed token for EventSource URLs (``?stream_token=``)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(request=StreamTokenRequestSerializer, responses={201: StreamTokenSerializer})
    def post(self, request: Request) -> Response:
        data = StreamTokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        match = request.resolver_match
        namespace = (match and match.namespace) or "nexus_sse"
        if "workflow" in data.validated_data:
            slug = data.validated_data["workflow"]
            workflow = Workflow.objects.filter(slug=slug, is_active=True).first()
            if workflow is None:
                raise NotFound(f"no active workflow named {slug!r}")
            if not access.may_execute(user, workflow):
                raise PermissionDenied(f"you may not run workflow {slug!r}")
            token = stream_tokens.issue(user, workflow=slug)
            url = reverse(f"{namespace}:execute", args=[slug])
        else:
            run = Run.objects.filter(pk=data.validated_data["run"]).first()
            if run is None or not access.can_see_run(user, run):
                raise NotFound("no such run")
            token = stream_tokens.issue(user, run=str(run.pk))
            url = reverse(f"{namespace}:run-events", args=[run.pk])
        body = {
            "token": token,
            "expires_in": conf.get("STREAM_TOKEN_SECONDS"),
            "url": f"{url}?stream_token={token}",
        }
        return Response(StreamTokenSerializer(body).data, status=status.HTTP_201_CREATED)
