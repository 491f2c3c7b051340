"""Admin for workflows and runs (read-only run history)."""

from django.contrib import admin

from nexus_sse.models import Run, RunEvent, Workflow


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "version", "source", "is_active", "updated_at")
    list_filter = ("source", "is_active")
    search_fields = ("slug", "name", "description")


class RunEventInline(admin.TabularInline):
    model = RunEvent
    fields = ("seq", "event", "data", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "workflow", "status", "mode", "user", "created_at", "execution_time")
    list_filter = ("status", "workflow", "created_at")
    readonly_fields = [f.name for f in Run._meta.fields]
    inlines = [RunEventInline]

    def has_add_permission(self, request):
        return False
