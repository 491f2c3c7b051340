"""nexus_sse: Django workflows streamed as resumable Server-Sent Events.

The public API is importable without touching models, so ``workflows.py`` modules can use it:
``register``, ``register_function``, ``register_node``, ``BaseNode``, ``WorkflowBuilder``.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "BaseNode",
    "Param",
    "WorkflowBuilder",
    "register",
    "register_function",
    "register_node",
    "sse_response",
]


def __getattr__(name: str) -> Any:
    # Lazy: importing nexus_sse must not import Django models or settings.
    if name == "register":
        from nexus_sse.registry import register

        return register
    if name in ("register_function", "register_node", "BaseNode", "Param"):
        from nexus_sse.workflows import nodes

        return getattr(nodes, name)
    if name == "WorkflowBuilder":
        from nexus_sse.workflows.builder import WorkflowBuilder

        return WorkflowBuilder
    if name == "sse_response":
        from nexus_sse.streaming import sse_response

        return sse_response
    raise AttributeError(f"module 'nexus_sse' has no attribute {name!r}")
