"""Run a WorkflowGraph: nodes whose inputs are ready run concurrently; events go to ``emit``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nexus_sse.exceptions import NexusError, NodeError, ValidationError
from nexus_sse.workflows.builder import WorkflowGraph

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass
class NodeContext:
    """What a running node can do besides returning outputs: stream tokens, report progress."""

    run_id: str
    node_id: str
    emit: Emit
    #: the workflow's share of work done before this node, and one node's share (percent)
    done_percent: float = 0.0
    node_share: float = 100.0
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)

    async def token(self, delta: str) -> None:
        """Send one ``token`` event (an LLM delta, a log line...)."""
        await self.emit("token", {"node": self.node_id, "delta": delta})

    async def progress(self, percent: float, message: str = "") -> None:
        """Report progress inside the node (0-100); the event's ``percent`` is the workflow's."""
        node_percent = min(max(float(percent), 0.0), 100.0)
        data: dict[str, Any] = {
            "node": self.node_id,
            "status": "running",
            # capped at the (whole-number) percent the node's "completed" event will carry, so the
            # workflow's percent never goes back (33.3 running, then 33 completed)
            "percent": min(
                round(self.done_percent + self.node_share * node_percent / 100, 1),
                int(self.done_percent + self.node_share),
            ),
            "node_percent": round(node_percent, 1),
        }
        if message:
            data["message"] = message
        await self.emit("progress", data)

    def token_threadsafe(self, delta: str) -> None:
        """``token`` for sync nodes running in a worker thread."""
        asyncio.run_coroutine_threadsafe(self.token(delta), self.loop).result()


def _lookup(outputs: dict[str, Any], path: str, node_id: str) -> Any:
    value: Any = outputs
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif path == "result" and value is outputs:
            return outputs  # Kailash's "result" of a node that returned a plain dict
        else:
            raise NodeError(f"node {node_id!r} produced no output {path!r}")
    return value


def node_inputs(
    graph: WorkflowGraph, node_id: str, request: dict[str, Any], outputs: dict[str, dict]
) -> dict:
    """Defaults < config < flat request inputs < node-scoped request inputs < connections."""
    node = graph.nodes[node_id]
    open_params = graph.open_inputs(node_id)
    values = {name: p.default for name, p in node.params.items() if p.default is not None}
    values.update({k: v for k, v in node.config.items() if k in node.params})
    values.update({k: v for k, v in request.items() if k in open_params})
    scoped = request.get(node_id)
    if isinstance(scoped, dict):
        values.update({k: v for k, v in scoped.items() if k in open_params})
    for conn in graph.incoming[node_id]:
        values[conn.to_input] = _lookup(outputs[conn.from_node], conn.from_output, conn.from_node)
    return values


def _percent(outputs: dict[str, dict[str, Any]], total: int) -> int:
    """The workflow's percent done: the share of nodes finished."""
    return int(100 * len(outputs) / total)


async def _run_node(
    graph: WorkflowGraph,
    node_id: str,
    inputs: dict[str, Any],
    outputs: dict[str, dict[str, Any]],
    emit: Emit,
    run_id: str,
) -> dict[str, Any]:
    """Run one node between its ``started`` event and its outputs; errors name the node."""
    node = graph.nodes[node_id]
    total = len(graph.order)
    await emit("progress", {"node": node_id, "status": "started", "percent": _percent(outputs, total)})
    ctx = NodeContext(
        run_id=run_id,
        node_id=node_id,
        emit=emit,
        done_percent=_percent(outputs, total),
        node_share=100 / total,
    )
    try:
        values = node_inputs(graph, node_id, inputs, outputs)
        # Derived schemas catch this before the run; a declared input_schema may not.
        missing = node.missing_inputs(set(values))
        if missing:
            raise ValidationError(
                f"node {node_id!r} is missing required input(s): {', '.join(missing)}",
                path=f"inputs.{missing[0]}",
            )
        return await node.execute(ctx, values)
    except NexusError as exc:
        exc.extra.setdefault("node", node_id)
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise NodeError(f"node {node_id!r} failed: {type(exc).__name__}: {exc}", node=node_id) from exc


async def run_graph(
    graph: WorkflowGraph, inputs: dict[str, Any], emit: Emit, run_id: str
) -> tuple[Any, dict]:
    """Execute every node; return ``(result, outputs)``. The result is the sink's output
    (``{sink_id: output}`` when there are several sinks). A failing node cancels the others."""
    total = len(graph.order)
    outputs: dict[str, dict[str, Any]] = {}
    waiting = {n: {c.from_node for c in graph.incoming[n]} for n in graph.order}
    running: dict[asyncio.Task, str] = {}

    async def node_done(node_id: str, output: dict[str, Any]) -> None:
        outputs[node_id] = output
        await emit("progress", {"node": node_id, "status": "completed", "percent": _percent(outputs, total)})
        for deps in waiting.values():
            deps.discard(node_id)

    try:
        while len(outputs) < total:
            ready = [n for n, deps in waiting.items() if not deps]
            for node_id in ready:
                del waiting[node_id]
            if len(ready) == 1 and not running:
                # Alone (one-node workflows, chains): run it in this task, no task or wait() to pay for.
                await node_done(ready[0], await _run_node(graph, ready[0], inputs, outputs, emit, run_id))
                continue
            for node_id in ready:
                task = asyncio.ensure_future(_run_node(graph, node_id, inputs, outputs, emit, run_id))
                running[task] = node_id
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                await node_done(running.pop(task), task.result())
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    if len(graph.sinks) == 1:
        return outputs[graph.sinks[0]], outputs
    return {sink: outputs[sink] for sink in graph.sinks}, outputs
