"""Sync code-registered workflows into Workflow rows."""

from django.core.management.base import BaseCommand

from nexus_sse.registry import registered, sync_code_workflows


class Command(BaseCommand):
    help = "Create or update a Workflow row for every workflow registered in code (workflows.py)."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default", help="Database alias (default: default).")

    def handle(self, *args, database: str, **options):
        created, updated, deactivated = sync_code_workflows(using=database)
        self.stdout.write(
            f"{len(registered())} code workflows: {created} created, {updated} updated, "
            f"{deactivated} deactivated (no longer in code)."
        )
