"""Request-input JSON Schema: derived from the graph's open inputs, and validation against it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jsonschema

from nexus_sse.exceptions import ValidationError, WorkflowDefinitionError

if TYPE_CHECKING:
    from nexus_sse.workflows.builder import WorkflowGraph


def derive_input_schema(graph: WorkflowGraph) -> dict[str, Any]:
    """Build a JSON Schema from every node's unconnected params.

    Flat keys feed every node with a param of that name; ``{"<node_id>": {...}}`` feeds one node.
    A required param is required unless the node's config already provides it.
    """
    properties: dict[str, Any] = {}
    required: set[str] = set()
    any_of: list[dict[str, Any]] = []
    for node_id in graph.order:
        node = graph.nodes[node_id]
        open_params = graph.open_inputs(node_id)
        node_props: dict[str, Any] = {}
        for name, param in open_params.items():
            properties.setdefault(name, param.schema())
            node_props[name] = param.schema()
        provided = set(node.config) | (set(node.params) - set(open_params))
        for name in node.missing_inputs(provided):
            if name in open_params:
                required.add(name)
        one_of = node.requires_one_of
        if one_of and not provided.intersection(one_of):
            any_of.append({"anyOf": [{"required": [n]} for n in one_of if n in open_params]})
        if node_id not in properties:
            # closed, like the flat keys: a misspelled node-scoped input is a 400, not silently dropped
            properties[node_id] = {"type": "object", "properties": node_props, "additionalProperties": False}
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = sorted(required)
    if any_of:
        schema["allOf"] = any_of
    return schema


def json_type(prop: Any) -> str | None:
    """The JSON type a property's value has when not null: ``["integer", "null"]`` is "integer"."""
    kind = prop.get("type") if isinstance(prop, dict) else None
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None) if len(set(kind) - {"null"}) == 1 else None
    return kind if isinstance(kind, str) else None


def check_schema(schema: Any) -> None:
    """Raise WorkflowDefinitionError unless ``schema`` is a valid JSON Schema."""
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise WorkflowDefinitionError(f"invalid input schema: {exc.message}", path="input_schema") from None


_validators: dict[int, tuple[dict[str, Any], jsonschema.Draft202012Validator]] = {}


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    # Building a validator costs more than validating; schemas live as long as their graphs.
    # The cache keeps the schema itself, so its id() cannot be reused while cached.
    hit = _validators.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    if len(_validators) > 512:
        _validators.clear()
    validator = jsonschema.Draft202012Validator(schema)
    _validators[id(schema)] = (schema, validator)
    return validator


def validate_inputs(schema: dict[str, Any], inputs: Any) -> None:
    """Raise ValidationError naming the first failing path."""
    validator = _validator(schema)
    if validator.is_valid(inputs):
        return
    error = jsonschema.exceptions.best_match(validator.iter_errors(inputs))
    if error is None:
        return
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required" or (error.validator == "anyOf" and not path):
        message = f"missing input: {error.message}"
    elif error.validator == "additionalProperties":
        message = f"unknown input: {error.message}"
    else:
        message = f"invalid input{' ' + repr(path) if path else ''}: {error.message}"
    raise ValidationError(message, path="inputs" + (f".{path}" if path else ""))
