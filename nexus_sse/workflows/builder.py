"""WorkflowBuilder (Kailash's surface) and the validated graph it builds."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from nexus_sse.exceptions import WorkflowDefinitionError
from nexus_sse.workflows.nodes import BaseNode, get_node_type


@dataclass(frozen=True)
class Connection:
    """Feed ``from_node``'s output ``from_output`` (a dotted path) into ``to_node``'s ``to_input``."""

    from_node: str
    from_output: str
    to_node: str
    to_input: str

    def as_dict(self) -> dict[str, str]:
        return {
            "from": self.from_node,
            "output": self.from_output,
            "to": self.to_node,
            "input": self.to_input,
        }


class WorkflowBuilder:
    """Collect nodes and connections, then ``build()`` a validated :class:`WorkflowGraph`.

    Mirrors Kailash's builder so ported workflows only change their imports::

        wf = WorkflowBuilder()
        wf.add_node("LLMAgentNode", "agent", {"model": "gpt-4"})
        graph = wf.build()
    """

    def __init__(self) -> None:
        self._nodes: dict[str, tuple[str, dict[str, Any]]] = {}
        self._connections: list[Connection] = []
        self.input_schema: dict[str, Any] | None = None

    def add_node(
        self, node_type: str | type[BaseNode], node_id: str | None = None, config: dict | None = None
    ) -> str:
        type_name = node_type if isinstance(node_type, str) else getattr(node_type, "type_name", None)
        if not isinstance(type_name, str):
            raise WorkflowDefinitionError(
                f"node type must be a type name or a node class, not {node_type!r}", path="nodes"
            )
        node_id = node_id or f"{type_name.lower()}_{len(self._nodes) + 1}"
        if not isinstance(node_id, str) or not node_id or "." in node_id:
            raise WorkflowDefinitionError(f"invalid node id {node_id!r}", path="nodes")
        if node_id in self._nodes:
            raise WorkflowDefinitionError(f"duplicate node id {node_id!r}", path=f"nodes.{node_id}")
        if config is not None and not isinstance(config, dict):
            raise WorkflowDefinitionError(
                f"config of node {node_id!r} must be an object", path=f"nodes.{node_id}"
            )
        self._nodes[node_id] = (type_name, dict(config or {}))
        return node_id

    def add_connection(
        self, from_node: str, from_output: str, to_node: str, to_input: str
    ) -> WorkflowBuilder:
        self._connections.append(Connection(from_node, from_output, to_node, to_input))
        return self

    def connect(self, from_node: str, to_node: str, mapping: dict[str, str] | None = None) -> WorkflowBuilder:
        """Kailash's shorthand: ``mapping`` is {from_output: to_input} (default result -> input)."""
        for out, inp in (mapping or {"result": "input"}).items():
            self.add_connection(from_node, out, to_node, inp)
        return self

    def set_input_schema(self, schema: dict[str, Any]) -> WorkflowBuilder:
        """Declare a JSON Schema for the request inputs (instead of the derived one)."""
        self.input_schema = schema
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nodes": [{"id": nid, "type": t, "config": c} for nid, (t, c) in self._nodes.items()],
            "connections": [c.as_dict() for c in self._connections],
        }
        if self.input_schema is not None:
            out["input_schema"] = self.input_schema
        return out

    @classmethod
    def from_dict(cls, definition: Any) -> WorkflowBuilder:
        """Read the JSON definition stored for admin-defined workflows (errors name the path)."""
        if not isinstance(definition, dict):
            raise WorkflowDefinitionError("a workflow definition must be an object", path="")
        unknown = set(definition) - {"nodes", "connections", "input_schema"}
        if unknown:
            raise WorkflowDefinitionError(f"unknown keys {sorted(unknown)}", path="")
        nodes = definition.get("nodes")
        if not isinstance(nodes, list) or not nodes:
            raise WorkflowDefinitionError("'nodes' must be a non-empty list", path="nodes")
        builder = cls()
        for i, node in enumerate(nodes):
            if (
                not isinstance(node, dict)
                or not isinstance(node.get("id"), str)
                or not isinstance(node.get("type"), str)
            ):
                raise WorkflowDefinitionError("each node needs string 'id' and 'type'", path=f"nodes.{i}")
            if set(node) - {"id", "type", "config"}:
                raise WorkflowDefinitionError(
                    f"unknown keys {sorted(set(node) - {'id', 'type', 'config'})}", path=f"nodes.{i}"
                )
            builder.add_node(node["type"], node["id"], node.get("config"))
        connections = definition.get("connections", [])
        if not isinstance(connections, list):
            raise WorkflowDefinitionError("'connections' must be a list", path="connections")
        for i, conn in enumerate(connections):
            keys = ("from", "output", "to", "input")
            if (
                not isinstance(conn, dict)
                or set(conn) != set(keys)
                or not all(isinstance(conn[k], str) for k in keys)
            ):
                raise WorkflowDefinitionError(
                    "each connection needs string 'from', 'output', 'to' and 'input'", path=f"connections.{i}"
                )
            builder.add_connection(conn["from"], conn["output"], conn["to"], conn["input"])
        if "input_schema" in definition:
            if not isinstance(definition["input_schema"], dict):
                raise WorkflowDefinitionError("'input_schema' must be an object", path="input_schema")
            builder.input_schema = definition["input_schema"]
        return builder

    def build(self) -> WorkflowGraph:
        if not self._nodes:
            raise WorkflowDefinitionError("a workflow needs at least one node", path="nodes")
        nodes: dict[str, BaseNode] = {}
        for node_id, (type_name, config) in self._nodes.items():
            try:
                nodes[node_id] = get_node_type(type_name)(node_id, config)
            except WorkflowDefinitionError as exc:
                exc.path = exc.path or f"nodes.{node_id}.type"
                raise
        return WorkflowGraph(nodes, list(self._connections), self.input_schema)


class WorkflowGraph:
    """A validated DAG: nodes in topological order, their incoming connections, the sinks."""

    def __init__(
        self, nodes: dict[str, BaseNode], connections: list[Connection], input_schema: dict | None = None
    ) -> None:
        self.nodes = nodes
        self.connections = connections
        self.incoming: dict[str, list[Connection]] = defaultdict(list)
        self.downstream: dict[str, set[str]] = defaultdict(set)
        for i, conn in enumerate(connections):
            for end in (conn.from_node, conn.to_node):
                if end not in nodes:
                    raise WorkflowDefinitionError(
                        f"connection {conn.from_node}.{conn.from_output} -> {conn.to_node}.{conn.to_input} "
                        f"refers to unknown node {end!r}",
                        path=f"connections.{i}",
                    )
            target = nodes[conn.to_node]
            if target.params and conn.to_input not in target.params and not target.accepts_any_input:
                raise WorkflowDefinitionError(
                    f"node {conn.to_node!r} ({target.type_name}) has no input {conn.to_input!r}; "
                    f"inputs: {sorted(target.params)}",
                    path=f"connections.{i}",
                )
            if any(c.to_node == conn.to_node and c.to_input == conn.to_input for c in connections[:i]):
                raise WorkflowDefinitionError(
                    f"input {conn.to_node}.{conn.to_input} is connected twice", path=f"connections.{i}"
                )
            self.incoming[conn.to_node].append(conn)
            self.downstream[conn.from_node].add(conn.to_node)
        self.order = self._topological_order()
        self.sinks = [n for n in self.order if not self.downstream[n]]
        from nexus_sse.workflows.schema import derive_input_schema  # local: schema imports this module

        self.input_schema = input_schema if input_schema is not None else derive_input_schema(self)

    def _topological_order(self) -> list[str]:
        indegree = {n: 0 for n in self.nodes}
        for targets in list(self.downstream.values()):
            for t in targets:
                indegree[t] += 1
        ready = [n for n in self.nodes if indegree[n] == 0]
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for t in sorted(self.downstream[n], key=list(self.nodes).index):
                indegree[t] -= 1
                if indegree[t] == 0:
                    ready.append(t)
        if len(order) != len(self.nodes):
            stuck = sorted(n for n in self.nodes if n not in order)
            raise WorkflowDefinitionError(
                f"the workflow has a cycle through nodes {stuck}", path="connections"
            )
        return order

    def open_inputs(self, node_id: str) -> dict[str, Any]:
        """The params of ``node_id`` that no connection feeds (so requests may supply them)."""
        connected = {c.to_input for c in self.incoming[node_id]}
        node = self.nodes[node_id]
        return {name: p for name, p in node.params.items() if name not in connected}
