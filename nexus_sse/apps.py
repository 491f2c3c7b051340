"""App config: registers checks and built-in nodes, discovers workflows.py, syncs after migrate."""

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save
from django.utils.module_loading import autodiscover_modules


class NexusSSEConfig(AppConfig):
    """Wire nexus_sse into Django at start-up."""

    name = "nexus_sse"
    verbose_name = "Nexus SSE workflows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from nexus_sse import checks  # noqa: F401  (registers the system checks)
        from nexus_sse.models import Workflow
        from nexus_sse.registry import forget_workflow
        from nexus_sse.workflows import builtin  # noqa: F401  (registers the built-in node types)

        autodiscover_modules("workflows")
        post_migrate.connect(_sync_after_migrate, sender=self)
        post_save.connect(forget_workflow, sender=Workflow, dispatch_uid="nexus_sse_forget_workflow")
        post_delete.connect(forget_workflow, sender=Workflow, dispatch_uid="nexus_sse_forget_workflow")


def _sync_after_migrate(using: str = "default", **kwargs) -> None:
    from nexus_sse import conf
    from nexus_sse.registry import sync_code_workflows

    if conf.get("SYNC_ON_MIGRATE"):
        sync_code_workflows(using=using)
