"""Workflow registry rows, runs and their archived events."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from nexus_sse.enums import RunMode, RunStatus
from nexus_sse.eventlog.base import EXECUTOR_ID
from nexus_sse.run_ids import new_run_id

RATE_RE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def validate_rate(value: str) -> None:
    if value and not RATE_RE.match(value):
        raise ValidationError('A rate looks like "10/min" (per s, min, hour or day).')


def validate_permission(value: str) -> None:
    if value and value.count(".") != 1:
        raise ValidationError('Use "app_label.codename".')


def validate_input_schema(value: Any) -> None:
    from nexus_sse.exceptions import NexusError
    from nexus_sse.workflows.schema import check_schema

    if value is not None:
        try:
            check_schema(value)
        except NexusError as exc:
            raise ValidationError(exc.message) from None


def workflow_errors(source: str, access: str, permission: str, definition: Any) -> dict[str, str]:
    """Problems across fields of a workflow (the admin form and the API both ask)."""
    from nexus_sse.exceptions import NexusError
    from nexus_sse.workflows.builder import WorkflowBuilder

    errors = {}
    if access == "permission" and not permission:
        errors["permission"] = 'Access "permission" needs a permission.'
    if source != "code":
        try:
            WorkflowBuilder.from_dict(definition).build()
        except NexusError as exc:
            errors["definition"] = exc.message + (f" (at {exc.path})" if exc.path else "")
    return errors


class Workflow(models.Model):
    """A workflow that can be executed over HTTP: defined in code (synced) or in the admin (JSON)."""

    class Source(models.TextChoices):
        CODE = "code", "code"
        ADMIN = "admin", "admin"

    slug = models.SlugField(
        max_length=100, unique=True, help_text="The name in URLs: /workflows/<slug>/execute"
    )
    name = models.CharField(max_length=200, blank=True)
    version = models.CharField(max_length=50, default="1.0.0")
    description = models.TextField(blank=True)
    definition = models.JSONField(default=dict, blank=True, help_text="Nodes and connections (JSON).")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.ADMIN)
    is_active = models.BooleanField(default=True)

    class Access(models.TextChoices):
        DEFAULT = "", "default (NEXUS_SSE['DEFAULT_ACCESS'])"
        PUBLIC = "public", "anyone"
        AUTHENTICATED = "authenticated", "authenticated users"
        PERMISSION = "permission", "users with a permission"

    # Policy: editable for code workflows too.
    access = models.CharField(max_length=20, choices=Access.choices, default=Access.DEFAULT, blank=True)
    permission = models.CharField(
        max_length=150,
        blank=True,
        validators=[validate_permission],
        help_text='For access "permission": "app_label.codename".',
    )
    rate_limit = models.CharField(
        max_length=30,
        blank=True,
        validators=[validate_rate],
        help_text='Runs per user (per IP when anonymous), e.g. "10/min"; blank: default.',
    )
    input_schema = models.JSONField(
        null=True,
        blank=True,
        validators=[validate_input_schema],
        help_text="JSON Schema of the inputs (admin workflows; code ones declare it in code).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        errors = workflow_errors(self.source, self.access, self.permission, self.definition)
        if errors:
            raise ValidationError(errors)


class Run(models.Model):
    """One execution of a workflow, independent of any HTTP connection."""

    Status = RunStatus
    Mode = RunMode

    UNFINISHED = (Status.PENDING, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="runs")
    workflow_version = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    mode = models.CharField(max_length=10, choices=RunMode.choices, default=RunMode.STREAM)
    inputs = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_type = models.CharField(max_length=40, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="nexus_runs"
    )
    executor = models.CharField(max_length=200, blank=True, help_text="The process that runs it.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    execution_time = models.FloatField(null=True, blank=True, help_text="Seconds from start to end.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "executor"], name="nexus_run_status_executor")]

    def __str__(self) -> str:
        return f"{self.workflow_id}:{self.id}"

    @property
    def finished(self) -> bool:
        return self.status not in self.UNFINISHED

    @classmethod
    def new(cls, workflow: Workflow, mode: str, inputs: dict[str, Any], user: Any = None) -> Run:
        """An unsaved Run starting now, executed by this process, with a new time-ordered id.

        Built with positional values, in the order of Run's columns: Model.__init__ with keywords
        costs several times as much, on every execute request. tests/test_new_run.py fails when
        the columns change, and checks the result against the keyword constructor's."""
        now = timezone.now()
        values = (
            new_run_id(),
            workflow.pk,
            workflow.version,
            cls.Status.RUNNING,
            mode,
            inputs,
            None,
            None,
            "",
            "",
            user.pk if user is not None else None,
            EXECUTOR_ID,
            now,
            now,
            None,
            None,
        )
        build: Callable[..., Run] = cls  # (django-stubs types Run's keyword constructor only)
        run = build(*values)
        # run.workflow (and run.user) without a query, as Run(workflow=...) would
        Run.workflow.field.set_cached_value(run, workflow)
        if user is not None:
            Run.user.field.set_cached_value(run, user)
        return run


class RunEvent(models.Model):
    """An archived event of a run, for replay after the event log let it go, and for history."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    event = models.CharField(max_length=20)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="nexus_runevent_unique_seq")]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.seq} {self.event}"
