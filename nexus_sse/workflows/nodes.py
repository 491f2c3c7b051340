"""Node base class and the allow-list registry of node types.

The database stores a node's stable ``type_name``, never a dotted path, so an admin-defined
workflow can only ever instantiate classes registered here.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from nexus_sse.exceptions import WorkflowDefinitionError

if TYPE_CHECKING:
    from nexus_sse.workflows.runtime import NodeContext


@dataclass(frozen=True)
class Param:
    """One input of a node: its JSON type, whether it is required, its default, a description.

    ``nullable`` (an ``X | None`` annotation) lets a request send ``null`` too.
    """

    type: str | None = None
    required: bool = False
    default: Any = None
    description: str = ""
    nullable: bool = False

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.type:
            out["type"] = [self.type, "null"] if self.nullable else self.type
        if self.description:
            out["description"] = self.description
        if self.default is not None:
            out["default"] = self.default
        return out


class BaseNode:
    """Base of every node type. Subclass, set ``type_name`` and ``params``, implement ``run``.

    ``run(ctx, **inputs)`` is async (a sync ``run`` is executed in a thread so it never blocks the
    event loop) and returns a dict of outputs. ``ctx`` emits ``token`` and ``progress`` events.
    """

    type_name: ClassVar[str] = ""
    #: inputs the node accepts: from its config, from connections, or from the request's inputs.
    #: A class sets it for all its nodes; a node may set its own in ``check_config`` (FunctionNode
    #: takes its function's parameters, TemplateNode its template's fields).
    params: dict[str, Param] = {}
    #: config keys that are not inputs (validated by ``check_config``).
    config_keys: ClassVar[frozenset[str]] = frozenset()
    #: inputs of which a request (or the config, or a connection) must give at least one.
    requires_one_of: ClassVar[tuple[str, ...]] = ()
    #: connections may feed inputs not in ``params`` (the node reads them from ``**inputs``).
    accepts_any_input: ClassVar[bool] = False

    def __init__(self, node_id: str, config: dict[str, Any] | None = None) -> None:
        self.node_id = node_id
        self.config = dict(config or {})
        self.check_config()

    def check_config(self) -> None:
        """Raise WorkflowDefinitionError for config the node cannot work with."""
        unknown = set(self.config) - set(self.params) - self.config_keys
        if unknown:
            raise WorkflowDefinitionError(
                f"node {self.node_id!r} ({self.type_name}) has unknown config keys: {sorted(unknown)}",
                path=f"nodes.{self.node_id}.config",
            )

    def missing_inputs(self, available: set[str]) -> list[str]:
        """Return the required inputs not in ``available`` (override for either-or inputs)."""
        return [name for name, p in self.params.items() if p.required and name not in available]

    async def run(self, ctx: NodeContext, **inputs: Any) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    async def execute(self, ctx: NodeContext, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run the node: coroutine directly, sync ``run`` in a worker thread."""
        result = await invoke(self.run, ctx, **inputs)
        if not isinstance(result, dict):
            result = {"result": result}
        return result


def invoke(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Awaitable[Any]:
    """Call ``func``: a coroutine function directly, a sync one in a worker thread.

    Not a coroutine itself, so awaiting its answer costs no extra frame per node.
    """
    if inspect.iscoroutinefunction(func):
        return func(*args, **kwargs)
    return asyncio.to_thread(func, *args, **kwargs)


_NODE_TYPES: dict[str, type[BaseNode]] = {}


def register_node(cls: type[BaseNode]) -> type[BaseNode]:
    """Add a node class to the allow-list (usable as a decorator)."""
    if not cls.type_name:
        raise ValueError(f"{cls.__name__} needs a type_name")
    existing = _NODE_TYPES.get(cls.type_name)
    if existing is not None and existing is not cls:
        raise ValueError(f"node type {cls.type_name!r} is already registered by {existing.__qualname__}")
    _NODE_TYPES[cls.type_name] = cls
    return cls


def get_node_type(type_name: str) -> type[BaseNode]:
    try:
        return _NODE_TYPES[type_name]
    except KeyError:
        raise WorkflowDefinitionError(
            f"unknown node type {type_name!r}; registered types: {sorted(_NODE_TYPES)}"
        ) from None


# Registered Python callables that FunctionNode may call, by name (an allow-list too).
_FUNCTIONS: dict[str, Callable[..., Any]] = {}


def register_function(name: str | Callable[..., Any] | None = None, func: Callable[..., Any] | None = None):
    """Allow FunctionNode to call ``func`` under ``name``.

    Usable as ``register_function("slug", f)``, ``@register_function`` or ``@register_function("slug")``.
    """
    if callable(name):
        func, name = name, None

    def add(f: Callable[..., Any]) -> Callable[..., Any]:
        key = name or f"{f.__module__}.{f.__qualname__}"
        existing = _FUNCTIONS.get(key)
        if existing is not None and existing is not f:
            raise ValueError(f"function {key!r} is already registered")
        _FUNCTIONS[key] = f
        return f

    return add(func) if func is not None else add


def get_function(name: str) -> Callable[..., Any]:
    try:
        return _FUNCTIONS[name]
    except KeyError:
        raise WorkflowDefinitionError(
            f"unknown function {name!r}; register it with nexus_sse.register_function()"
        ) from None
