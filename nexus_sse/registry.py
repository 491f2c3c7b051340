"""Code-registered workflows: ``register()``, discovery, sync into Workflow rows, graph loading."""

from __future__ import annotations

import asyncio
import functools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from nexus_sse.exceptions import NotFound, WorkflowDefinitionError
from nexus_sse.workflows.builder import WorkflowBuilder, WorkflowGraph

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


@dataclass
class RegisteredWorkflow:
    """A workflow defined in code, built (and so validated) when it is registered."""

    name: str
    graph: WorkflowGraph
    definition: dict[str, Any]
    version: str = "1.0.0"
    description: str = ""
    title: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_registry: dict[str, RegisteredWorkflow] = {}


def register(
    name: str,
    workflow: WorkflowBuilder,
    *,
    version: str = "1.0.0",
    description: str = "",
    title: str = "",
    input_schema: dict[str, Any] | None = None,
) -> RegisteredWorkflow:
    """Register a code workflow under ``name`` (call it from an installed app's ``workflows.py``).

    The builder is built now, so a bad graph fails at start-up rather than at the first request.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise WorkflowDefinitionError(f"invalid workflow name {name!r}: use letters, digits, '-' and '_'")
    if not isinstance(workflow, WorkflowBuilder):
        raise TypeError("register() takes a WorkflowBuilder")
    if input_schema is not None:
        from nexus_sse.workflows.schema import check_schema

        check_schema(input_schema)
        workflow.set_input_schema(input_schema)
    entry = RegisteredWorkflow(
        name=name,
        graph=workflow.build(),
        definition=workflow.to_dict(),
        version=version,
        description=description,
        title=title or name,
    )
    _registry[name] = entry
    return entry


def registered() -> dict[str, RegisteredWorkflow]:
    return dict(_registry)


def sync_code_workflows(using: str = "default") -> tuple[int, int, int]:
    """Create or update a Workflow row per code workflow; deactivate rows whose code is gone.

    Returns (created, updated, deactivated). ``is_active`` of an existing row is left alone (the
    admin may have disabled it), except for rows whose code no longer exists.
    """
    from nexus_sse.models import Workflow

    created = updated = 0
    for entry in _registry.values():
        fields = {
            "name": entry.title,
            "version": entry.version,
            "description": entry.description,
            "definition": entry.definition,
            "source": Workflow.Source.CODE,
        }
        row = Workflow.objects.using(using).filter(slug=entry.name).first()
        if row is None:
            Workflow.objects.using(using).create(slug=entry.name, **fields)
            created += 1
        elif any(getattr(row, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(row, k, v)
            row.save(using=using)
            updated += 1
    deactivated = (
        Workflow.objects.using(using)
        .filter(source=Workflow.Source.CODE, is_active=True)
        .exclude(slug__in=list(_registry))
        .update(is_active=False)
    )
    return created, updated, deactivated


_admin_graphs: dict[tuple[str, Any], WorkflowGraph] = {}


def graph_for(workflow: Any) -> WorkflowGraph:
    """The executable graph of a Workflow row: the registered code, or its JSON definition."""
    if workflow.source == "code":
        entry = _registry.get(workflow.slug)
        if entry is None:
            raise NotFound(f"workflow {workflow.slug!r} is not registered in this process")
        return entry.graph
    key = (workflow.slug, workflow.updated_at)
    graph = _admin_graphs.get(key)
    if graph is None:
        definition = workflow.definition
        if workflow.input_schema is not None and isinstance(definition, dict):
            definition = {**definition, "input_schema": workflow.input_schema}
        graph = WorkflowBuilder.from_dict(definition).build()
        if len(_admin_graphs) > 256:
            _admin_graphs.clear()
        _admin_graphs[key] = graph
    return graph


_active: dict[str, tuple[float, Any]] = {}
#: lookups under way, so that the requests arriving when a cached row expires share one query
_loading: dict[str, asyncio.Future] = {}


async def active_workflow(slug: str) -> Any:
    """The active Workflow row named ``slug`` (None if there is none), cached for
    WORKFLOW_CACHE_SECONDS; saves and deletes in this process drop the cached row at once."""
    hit = _active.get(slug)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    loop = asyncio.get_running_loop()
    task = _loading.get(slug)
    if task is None or task.get_loop() is not loop:
        task = _loading[slug] = asyncio.ensure_future(_load_active(slug))
        task.add_done_callback(functools.partial(_loaded, slug))
    return await asyncio.shield(task)  # one caller going away does not stop the others' lookup


def _loaded(slug: str, task: asyncio.Future) -> None:
    if _loading.get(slug) is task:
        del _loading[slug]


async def _load_active(slug: str) -> Any:
    from nexus_sse import conf, db
    from nexus_sse.models import Workflow

    now = time.monotonic()
    row = await db.call(lambda: Workflow.objects.filter(slug=slug, is_active=True).first())
    if len(_active) > 1024:
        _active.clear()
    _active[slug] = (now + conf.get("WORKFLOW_CACHE_SECONDS"), row)
    return row


def forget_workflow(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    """Signal receiver: a Workflow row changed, so drop cached rows (all: its slug may have changed)."""
    _active.clear()
    _loading.clear()  # a lookup under way may have read the row before the change
