"""Admin: the workflow registry (with a "Try it" page) and the run history (live, cancellable)."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, TypedDict

from asgiref.sync import async_to_sync
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from nexus_sse import registry, runs
from nexus_sse.access import POLICY_FIELDS
from nexus_sse.exceptions import NexusError
from nexus_sse.forms import WorkflowForm
from nexus_sse.models import Run, RunEvent, Workflow
from nexus_sse.workflows.schema import json_type

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _RunCounts(TypedDict):
        run_total: int
        last_status: str | None

    ListedWorkflow = WithAnnotations[Workflow, _RunCounts]  # as WorkflowAdmin.get_queryset gives it

# What a duplicate does not take from its original (it is a new, disabled admin workflow).
DUPLICATE_OWN_FIELDS = ("id", "slug", "name", "source", "is_active", "created_at", "updated_at")


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    """Code workflows are read-only here but for enable/disable and their policy fields."""

    form = WorkflowForm
    list_display = (
        "slug",
        "name",
        "version",
        "source",
        "is_active",
        "access",
        "run_count",
        "last_run_status",
        "try_it",
    )
    list_filter = ("source", "is_active", "access")
    search_fields = ("slug", "name", "description")
    actions = ("enable", "disable", "duplicate")
    readonly_fields = ("source", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        last = Run.objects.filter(workflow=OuterRef("pk")).order_by("-created_at").values("status")[:1]
        return super().get_queryset(request).annotate(run_total=Count("runs"), last_status=Subquery(last))

    @admin.display(description="runs", ordering="run_total")
    def run_count(self, obj: ListedWorkflow) -> int:
        return obj.run_total

    @admin.display(description="last run")
    def last_run_status(self, obj: ListedWorkflow) -> str:
        return obj.last_status or "-"

    @admin.display(description="")
    def try_it(self, obj: Workflow) -> str:
        return format_html('<a href="{}">Try it</a>', reverse("admin:nexus_sse_workflow_try", args=[obj.pk]))

    def get_readonly_fields(self, request: HttpRequest, obj: Workflow | None = None) -> list[str]:
        if obj is not None and obj.source == Workflow.Source.CODE:
            return [f.name for f in Workflow._meta.fields if f.name not in POLICY_FIELDS and f.name != "id"]
        return list(self.readonly_fields)

    def has_delete_permission(self, request: HttpRequest, obj: Workflow | None = None) -> bool:
        if obj is not None and obj.source == Workflow.Source.CODE:
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description="Enable selected workflows", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, True)

    @admin.action(description="Disable selected workflows", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_active(request, queryset, False)

    def _set_active(self, request: HttpRequest, queryset: QuerySet, active: bool) -> None:
        for workflow in queryset:  # save() rather than update(), so caches hear about it
            workflow.is_active = active
            workflow.save(update_fields=["is_active", "updated_at"])
        self.message_user(request, f"{queryset.count()} workflow(s) {'enabled' if active else 'disabled'}.")

    @admin.action(description="Duplicate as admin workflow", permissions=["add"])
    def duplicate(self, request: HttpRequest, queryset: QuerySet) -> None:
        for workflow in queryset:
            slug = f"{workflow.slug}-copy"
            n = 2
            while Workflow.objects.filter(slug=slug).exists():
                slug, n = f"{workflow.slug}-copy-{n}", n + 1
            # Every other field, the access policy included: enabling the copy must not open what
            # the original guards (and a field added later is carried without anyone remembering).
            copied = {
                f.name: getattr(workflow, f.name)
                for f in Workflow._meta.concrete_fields
                if f.name not in DUPLICATE_OWN_FIELDS
            }
            Workflow.objects.create(
                **copied,
                slug=slug,
                name=f"{workflow.name or workflow.slug} (copy)",
                source=Workflow.Source.ADMIN,
                is_active=False,
            )
        self.message_user(
            request, f"{queryset.count()} workflow(s) duplicated (disabled until you enable them)."
        )

    def get_urls(self) -> list:
        return [
            path("<int:pk>/try/", self.admin_site.admin_view(self.try_view), name="nexus_sse_workflow_try"),
            *super().get_urls(),
        ]

    def try_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """An inputs form built from the input schema; the run's events stream onto the page."""
        workflow = get_object_or_404(Workflow, pk=pk)
        if not self.has_view_permission(request, workflow):
            raise DjangoPermissionDenied
        try:
            schema = registry.graph_for(workflow).input_schema
            problem = None
        except NexusError as exc:
            schema, problem = {}, exc.message
        try:
            execute_url = reverse("nexus_sse:execute", args=[workflow.slug])
        except NoReverseMatch:
            execute_url = ""
        context = {
            **self.admin_site.each_context(request),
            "title": f"Try {workflow.slug}",
            "workflow": workflow,
            "fields": _schema_fields(schema),
            "problem": problem,
            "execute_url": execute_url,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "nexus_sse/admin/try.html", context)


def _schema_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Form fields for the top-level properties of a JSON Schema (objects and arrays as JSON text)."""
    required = set(schema.get("required", []))
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        kind = json_type(prop) or "string"  # ["integer", "null"] (an int | None parameter) is an integer
        widget = {"integer": "number", "number": "number", "boolean": "checkbox"}.get(kind, "text")
        if kind in ("object", "array"):
            widget = "json"
        fields.append(
            {
                "name": name,
                "type": kind,
                "widget": widget,
                "required": name in required,
                "description": prop.get("description", ""),
                "default": json.dumps(prop["default"])
                if kind in ("object", "array") and "default" in prop
                else prop.get("default", ""),
            }
        )
    return fields


class RunEventInline(admin.TabularInline):
    model = RunEvent
    fields = ("seq", "event", "data", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("seq",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    """Run history: read-only; a live run's page follows its events."""

    list_display = ("id", "workflow", "status", "mode", "user", "created_at", "execution_time")
    list_filter = ("status", "workflow", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("id", "workflow__slug", "error")
    readonly_fields = [f.name for f in Run._meta.fields]
    inlines = [RunEventInline]
    actions = ("cancel",)
    change_form_template = "nexus_sse/admin/run_change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Cancel selected runs", permissions=["cancel"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        for run in queryset.select_related("workflow"):
            try:
                state = async_to_sync(runs.cancel)(run)
            except NexusError as exc:
                self.message_user(request, f"{run.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"{run.pk}: {state}")

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ):
        run = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if run is not None and not run.finished:
            with contextlib.suppress(NoReverseMatch):
                extra["events_url"] = reverse("nexus_sse:run-events", args=[run.pk])
        return super().change_view(request, object_id, form_url, extra)
