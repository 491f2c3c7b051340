"""The workflow engine: graphs are validated with errors that say where, and the runtime runs them.

Functions used by FunctionNodes are registered once, at import, under "tests.engine.*". Objects that
synchronise a test with a running node (events, barriers) travel as request inputs: the runtime passes
inputs through as they are (validation against the schema is the caller's job).
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Optional

import pytest

import nexus_sse
from nexus_sse.exceptions import NodeError, ValidationError, WorkflowDefinitionError
from nexus_sse.workflows.builder import WorkflowBuilder
from nexus_sse.workflows.nodes import BaseNode
from nexus_sse.workflows.runtime import run_graph
from nexus_sse.workflows.schema import validate_inputs

WAIT = 10  # seconds: generous upper bounds on waits that normally end in milliseconds


@nexus_sse.register_function("tests.engine.typed")
def typed(count: int, ratio: float = 0.5, flag: bool = False, name: str = "x") -> dict:
    return {"count": count, "ratio": ratio, "flag": flag, "name": name}


@nexus_sse.register_function("tests.engine.optional")
def optional(
    meta: dict | None = None,
    tags: list[str] | None = None,
    limit: int | None = None,
    scores: dict[str, float] | None = None,
    either: int | str = 0,
    later: Undefined | None = None,  # noqa: F821 (a name get_type_hints cannot resolve)
) -> dict:
    return {"meta": meta}


@nexus_sse.register_function("tests.engine.meet")
async def meet(barrier) -> dict:
    # both branches must be waiting at once for the barrier to open: proves they run concurrently
    await barrier.wait()
    return {"met": True}


@nexus_sse.register_function("tests.engine.hang")
async def hang(started, cancelled) -> dict:
    started.set()
    try:
        await asyncio.Event().wait()
    finally:
        cancelled.set()
    return {}


@nexus_sse.register_function("tests.engine.boom")
async def boom(after) -> dict:
    await after.wait()  # fail only once the sibling is running, so cancelling it is what we see
    raise ValueError("kaboom")


@nexus_sse.register_function("tests.engine.block")
def block(entered, release) -> dict:
    entered.set()
    return {"released": release.wait(WAIT), "thread": threading.get_ident()}


@nexus_sse.register_function("tests.engine.user")
def user() -> dict:
    return {"user": {"name": "Ada", "langs": ["en", "fr"]}, "n": 2}


@nexus_sse.register_function("tests.engine.plain")
def plain() -> dict:
    return {"a": 1, "b": 2}


@nexus_sse.register_function("tests.engine.echo")
def echo(value) -> dict:
    return {"value": value}


@nexus_sse.register_function("tests.engine.halfway")
async def halfway(ctx) -> dict:
    await ctx.progress(50, "half done")
    return {}


@nexus_sse.register_function("tests.engine.sync_tokens")
def sync_tokens(ctx, words: list) -> dict:
    for word in words:
        ctx.token_threadsafe(word)
    return {"count": len(words)}


def template(*nodes: str, template: str = "{x}") -> WorkflowBuilder:
    wf = WorkflowBuilder()
    for node in nodes:
        wf.add_node("TemplateNode", node, {"template": template})
    return wf


def definition(*nodes: dict, connections: list | None = None) -> dict:
    out: dict = {"nodes": list(nodes)}
    if connections is not None:
        out["connections"] = connections
    return out


T = {"type": "TemplateNode", "config": {"template": "{x}"}}


def conn(a: str, out: str, b: str, inp: str) -> dict:
    return {"from": a, "output": out, "to": b, "input": inp}


# --- building ------------------------------------------------------------------------------------


def test_unknown_node_type_names_the_type_and_the_registered_ones():
    wf = WorkflowBuilder()
    wf.add_node("NoSuchNode", "x", {})
    with pytest.raises(WorkflowDefinitionError) as info:
        wf.build()
    assert "unknown node type 'NoSuchNode'" in info.value.message
    assert "TemplateNode" in info.value.message  # the allow-list is shown
    assert info.value.path == "nodes.x.type"


def test_add_node_refuses_a_type_that_is_neither_a_name_nor_a_node_class():
    with pytest.raises(WorkflowDefinitionError, match="node type must be"):
        WorkflowBuilder().add_node(42, "x")


def test_add_node_accepts_a_node_class():
    class Constant(BaseNode):
        type_name = "TemplateNode"  # resolved by name, so only registered classes can ever run

    wf = WorkflowBuilder()
    wf.add_node(Constant, "c", {"template": "hi"})
    assert type(wf.build().nodes["c"]).__name__ == "TemplateNode"


def test_duplicate_node_ids_are_refused():
    wf = template("x")
    with pytest.raises(WorkflowDefinitionError, match="duplicate node id 'x'") as info:
        wf.add_node("TemplateNode", "x", {"template": "{x}"})
    assert info.value.path == "nodes.x"


@pytest.mark.parametrize("bad", ["a.b", 7])
def test_invalid_node_ids_are_refused(bad):
    with pytest.raises(WorkflowDefinitionError, match="invalid node id"):
        WorkflowBuilder().add_node("TemplateNode", bad, {"template": "x"})


def test_a_node_without_an_id_gets_one():
    wf = WorkflowBuilder()
    assert wf.add_node("TemplateNode", None, {"template": "x"}) == "templatenode_1"
    assert wf.add_node("TemplateNode", "", {"template": "x"}) == "templatenode_2"


@pytest.mark.parametrize(
    ("connections", "stuck"),
    [
        ([("a", "result", "b", "x"), ("b", "result", "a", "x")], "['a', 'b']"),
        ([("a", "result", "a", "x")], "['a']"),
        ([("a", "result", "b", "x"), ("b", "result", "c", "x"), ("c", "result", "b", "y")], "['b', 'c']"),
    ],
)
def test_cycles_are_refused_and_name_their_nodes(connections, stuck):
    wf = template("a", "b", "c", template="{x}{y}")
    for c in connections:
        wf.add_connection(*c)
    with pytest.raises(WorkflowDefinitionError) as info:
        wf.build()
    assert info.value.message == f"the workflow has a cycle through nodes {stuck}"
    assert info.value.path == "connections"


@pytest.mark.parametrize(
    ("connections", "message", "path"),
    [
        ([("a", "result", "ghost", "x")], "refers to unknown node 'ghost'", "connections.0"),
        (
            [("a", "result", "b", "x"), ("ghost", "result", "b", "y")],
            "refers to unknown node 'ghost'",
            "connections.1",
        ),
        (
            [("a", "result", "b", "nope")],
            "node 'b' (TemplateNode) has no input 'nope'; inputs: ['x']",
            "connections.0",
        ),
        (
            [("a", "result", "b", "x"), ("c", "result", "b", "x")],
            "input b.x is connected twice",
            "connections.1",
        ),
    ],
)
def test_bad_connections_are_refused_with_their_index(connections, message, path):
    wf = template("a", "b", "c")
    for c in connections:
        wf.add_connection(*c)
    with pytest.raises(WorkflowDefinitionError) as info:
        wf.build()
    assert message in info.value.message
    assert info.value.path == path


def test_an_empty_workflow_is_refused():
    with pytest.raises(WorkflowDefinitionError, match="at least one node") as info:
        WorkflowBuilder().build()
    assert info.value.path == "nodes"


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ([], "", "must be an object"),
        ({"nodes": [T | {"id": "a"}], "extra": 1}, "", "unknown keys ['extra']"),
        ({"connections": []}, "nodes", "non-empty list"),
        (definition(), "nodes", "non-empty list"),
        (definition(T | {"id": "a"}, {"id": "b"}), "nodes.1", "string 'id' and 'type'"),
        (definition(T | {"id": 3}), "nodes.0", "string 'id' and 'type'"),
        (definition(T | {"id": "a", "colour": "red"}), "nodes.0", "unknown keys ['colour']"),
        (definition(T | {"id": "a"}, T | {"id": "a"}), "nodes.a", "duplicate node id"),
        (definition({"id": "a", "type": "TemplateNode", "config": []}), "nodes.a", "must be an object"),
        (definition(T | {"id": "a"}, connections={}), "connections", "must be a list"),
        (definition(T | {"id": "a"}, connections=[{"from": "a"}]), "connections.0", "needs string"),
        (
            definition(T | {"id": "a"}, T | {"id": "b"}, connections=[conn("a", "result", "b", "x"), "a->b"]),
            "connections.1",
            "needs string",
        ),
        (
            definition(T | {"id": "a"}, connections=[conn("a", "result", "b", "x") | {"via": "z"}]),
            "connections.0",
            "needs string",
        ),
        ({"nodes": [T | {"id": "a"}], "input_schema": []}, "input_schema", "must be an object"),
    ],
)
def test_from_dict_errors_name_the_path(data, path, message):
    with pytest.raises(WorkflowDefinitionError) as info:
        WorkflowBuilder.from_dict(data)
    assert info.value.path == path
    assert message in info.value.message


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (definition(T | {"id": "a"}, {"id": "b", "type": "Nope"}), "nodes.b.type"),
        (
            definition(
                T | {"id": "a"},
                T | {"id": "b"},
                connections=[conn("a", "result", "b", "x"), conn("a", "result", "z", "x")],
            ),
            "connections.1",
        ),
        (
            definition({"id": "l", "type": "LLMAgentNode", "config": {"temperature": 9}}),
            "nodes.l.config.temperature",
        ),
    ],
)
def test_definitions_that_parse_but_do_not_build_name_the_path(data, path):
    with pytest.raises(WorkflowDefinitionError) as info:
        WorkflowBuilder.from_dict(data).build()
    assert info.value.path == path


def build_one(node_type: str, config: dict):
    wf = WorkflowBuilder()
    wf.add_node(node_type, "n", config)
    return wf.build()


@pytest.mark.parametrize(
    ("config", "message", "path"),
    [
        (
            {"function": "tests.engine.not_registered"},
            "unknown function 'tests.engine.not_registered'",
            "nodes.n.config.function",
        ),
        ({}, "must name a registered function", "nodes.n.config.function"),
        ({"function": 3}, "must name a registered function", "nodes.n.config.function"),
        (
            {"function": "tests.engine.typed", "colour": "red"},
            "unknown config keys: ['colour']",
            "nodes.n.config",
        ),
    ],
)
def test_function_node_needs_a_registered_function(config, message, path):
    with pytest.raises(WorkflowDefinitionError) as info:
        build_one("FunctionNode", config)
    assert message in info.value.message
    assert info.value.path == path


@pytest.mark.parametrize(
    "text",
    ["{x.__class__}", "{x[0]}", "{}", "{0}", "{x:{y.__class__}}", "{x:{y[0]}}", "{x.__init__.__globals__}"],
)
def test_template_fields_must_be_plain_names(text):
    with pytest.raises(WorkflowDefinitionError, match="must be a plain name") as info:
        build_one("TemplateNode", {"template": text})
    assert info.value.path == "nodes.n.config.template"


@pytest.mark.parametrize("config", [{"template": "{"}, {"template": "}"}, {"template": 3}, {}])
def test_malformed_templates_are_refused(config):
    with pytest.raises(WorkflowDefinitionError) as info:
        build_one("TemplateNode", config)
    assert info.value.path == "nodes.n.config.template"


def test_template_fields_become_required_inputs_including_nested_format_specs():
    graph = build_one("TemplateNode", {"template": "{greeting}, {name:>{width}}! {greeting}"})
    assert graph.input_schema["required"] == ["greeting", "name", "width"]


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"temperature": 5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"model": 4}, "model"),
        ({"system_prompt": ["be kind"]}, "system_prompt"),
        ({"provider": None}, "provider"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_llm_agent_refuses_bad_config_values(config, key):
    with pytest.raises(WorkflowDefinitionError, match=f"invalid config '{key}'") as info:
        build_one("LLMAgentNode", config)
    assert info.value.path == f"nodes.n.config.{key}"


def test_llm_agent_refuses_unknown_config_keys():
    with pytest.raises(WorkflowDefinitionError, match=r"unknown config keys: \['colour'\]") as info:
        build_one("LLMAgentNode", {"model": "m", "colour": "red"})
    assert info.value.path == "nodes.n.config"


def test_llm_agent_accepts_the_edges_of_its_ranges():
    build_one("LLMAgentNode", {"temperature": 0, "max_tokens": 1, "timeout": 0.5})
    build_one("LLMAgentNode", {"temperature": 2.0, "max_tokens": None})


# --- input schema ----------------------------------------------------------------------------------


def test_derived_schema_of_a_function_node_has_types_defaults_required_and_a_node_scope():
    schema = build_one("FunctionNode", {"function": "tests.engine.typed"}).input_schema
    params = {
        "count": {"type": "integer"},
        "ratio": {"type": "number", "default": 0.5},
        "flag": {"type": "boolean", "default": False},
        "name": {"type": "string", "default": "x"},
    }
    assert schema == {
        "type": "object",
        "properties": {
            **params,
            "n": {"type": "object", "properties": params, "additionalProperties": False},
        },
        "additionalProperties": False,
        "required": ["count"],
    }


def test_optional_and_generic_annotations_give_their_json_type_and_allow_null():
    schema = build_one("FunctionNode", {"function": "tests.engine.optional"}).input_schema
    types = {name: prop.get("type") for name, prop in schema["properties"]["n"]["properties"].items()}
    assert types == {
        "meta": ["object", "null"],
        "tags": ["array", "null"],
        "limit": ["integer", "null"],
        "scores": ["object", "null"],
        "either": None,
        "later": None,
    }
    validate_inputs(schema, {"meta": {"k": 1}, "tags": ["a"], "limit": None, "scores": None, "either": "x"})
    for name, wrong in [("meta", "text"), ("tags", {}), ("limit", 1.5), ("scores", [1])]:
        with pytest.raises(ValidationError) as info:
            validate_inputs(schema, {name: wrong})
        assert info.value.path == f"inputs.{name}"


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (dict | None, ("object", True)),
        (Optional[list[int]], ("array", True)),  # noqa: UP045 (the old spelling is read too)
        (dict[str, float], ("object", False)),
        (int | str, (None, False)),
        (int | str | None, (None, True)),
        (bool, ("boolean", False)),
        ("float | None", ("number", True)),
        ("Optional[str]", ("string", True)),
        ("dict[str, int | None]", ("object", False)),
        ("Missing", (None, False)),
    ],
)
def test_annotation_types_of_resolved_and_string_annotations(annotation, expected):
    from nexus_sse.workflows.builtin import annotation_type

    assert annotation_type(annotation) == expected


def test_inputs_fed_by_a_connection_or_the_config_are_not_asked_for():
    wf = template("a", "b")
    wf.add_connection("a", "result", "b", "x")
    wf.add_node("FunctionNode", "f", {"function": "tests.engine.typed", "count": 3})
    schema = wf.build().input_schema
    assert schema["required"] == ["x"]  # a's x; b's x comes from a, f's count from its config
    assert schema["properties"]["b"] == {"type": "object", "properties": {}, "additionalProperties": False}
    assert "count" in schema["properties"]["f"]["properties"]  # a request may still override it


def test_llm_agent_schema_requires_any_one_of_its_message_inputs():
    schema = build_one("LLMAgentNode", {}).input_schema
    assert schema["allOf"] == [
        {"anyOf": [{"required": [n]} for n in ("message", "user_message", "prompt", "messages")]}
    ]
    assert "required" not in schema
    assert "allOf" not in build_one("LLMAgentNode", {"message": "fixed"}).input_schema


def test_a_declared_input_schema_replaces_the_derived_one():
    wf = template("a")
    wf.set_input_schema({"type": "object"})
    assert wf.build().input_schema == {"type": "object"}


@pytest.mark.parametrize(
    ("inputs", "path", "message"),
    [
        ({}, "inputs", "missing input"),
        ({"count": "3"}, "inputs.count", "invalid input 'count'"),
        ({"count": True}, "inputs.count", "invalid input 'count'"),
        ({"count": 1, "ratio": "half"}, "inputs.ratio", "invalid input 'ratio'"),
        ({"count": 1, "colour": "red"}, "inputs", "unknown input"),
        ({"count": 1, "n": {"flag": "yes"}}, "inputs.n.flag", "invalid input 'n.flag'"),
        ({"count": 1, "n": {"cuont": 2}}, "inputs.n", "unknown input"),  # a typo in a node-scoped input
        ({"count": 1, "n": []}, "inputs.n", "invalid input 'n'"),
        ([], "inputs", "invalid input"),
    ],
)
def test_validate_inputs_names_the_failing_input(inputs, path, message):
    schema = build_one("FunctionNode", {"function": "tests.engine.typed"}).input_schema
    with pytest.raises(ValidationError) as info:
        validate_inputs(schema, inputs)
    assert info.value.path == path
    assert message in info.value.message


@pytest.mark.parametrize("inputs", [{"count": 1}, {"count": 1, "ratio": 2, "flag": True, "n": {"name": "y"}}])
def test_validate_inputs_accepts_valid_inputs(inputs):
    validate_inputs(build_one("FunctionNode", {"function": "tests.engine.typed"}).input_schema, inputs)


def test_validate_inputs_for_an_llm_agent_needs_a_message():
    schema = build_one("LLMAgentNode", {}).input_schema
    validate_inputs(schema, {"prompt": "hi"})
    validate_inputs(schema, {"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(ValidationError, match="missing input") as info:
        validate_inputs(schema, {})
    assert info.value.path == "inputs"
    with pytest.raises(ValidationError) as info:
        validate_inputs(schema, {"message": 3})
    assert info.value.path == "inputs.message"


# --- round trip ------------------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_builds_an_equal_graph():
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "user", {"function": "tests.engine.user"})
    wf.add_node("TemplateNode", "greet", {"template": "Hi {name} ({n})"})
    wf.add_node("LLMAgentNode", "agent", {"model": "m", "temperature": 0.3})
    wf.add_connection("user", "user.name", "greet", "name")
    wf.connect("user", "greet", {"n": "n"})
    wf.connect("greet", "agent", {"result": "message"})
    wf.set_input_schema({"type": "object", "properties": {}})

    data = wf.to_dict()
    again = WorkflowBuilder.from_dict(data)
    assert again.to_dict() == data
    one, two = wf.build(), again.build()
    assert one.order == two.order == ["user", "greet", "agent"]
    assert one.connections == two.connections
    assert one.input_schema == two.input_schema == {"type": "object", "properties": {}}
    assert one.sinks == two.sinks == ["agent"]
    assert {n: (type(node), node.config) for n, node in one.nodes.items()} == {
        n: (type(node), node.config) for n, node in two.nodes.items()
    }


# --- running ---------------------------------------------------------------------------------------


async def run(graph, inputs, run_id="run-1"):
    events: list[tuple[str, dict]] = []

    async def emit(event: str, data: dict) -> None:
        events.append((event, data))

    result, outputs = await asyncio.wait_for(run_graph(graph, inputs, emit, run_id), WAIT)
    return result, outputs, events


def progress(events):
    return [(d["node"], d["status"], d["percent"]) for e, d in events if e == "progress"]


async def test_progress_events_come_in_order_from_0_to_100():
    wf = template("a", "b", "c")
    wf.add_connection("a", "result", "b", "x")
    wf.add_connection("b", "result", "c", "x")
    result, outputs, events = await run(wf.build(), {"a": {"x": "hi"}})
    assert progress(events) == [
        ("a", "started", 0),
        ("a", "completed", 33),
        ("b", "started", 33),
        ("b", "completed", 66),
        ("c", "started", 66),
        ("c", "completed", 100),
    ]
    assert result == {"result": "hi"}
    assert outputs == {"a": {"result": "hi"}, "b": {"result": "hi"}, "c": {"result": "hi"}}


async def test_progress_inside_a_node_is_scaled_to_the_workflow():
    # "half" is the first of two nodes: 50% of its half of the work is 25% of the workflow
    chain = WorkflowBuilder()
    chain.add_node("FunctionNode", "half", {"function": "tests.engine.halfway"})
    chain.add_node("TemplateNode", "after", {"template": "done {x}"})
    chain.add_connection("half", "result", "after", "x")
    _, _, events = await run(chain.build(), {})
    running = [d for e, d in events if e == "progress" and d["status"] == "running"]
    assert running == [
        {"node": "half", "status": "running", "percent": 25.0, "node_percent": 50.0, "message": "half done"}
    ]


async def test_concurrent_branches_run_at_the_same_time():
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "left", {"function": "tests.engine.meet"})
    wf.add_node("FunctionNode", "right", {"function": "tests.engine.meet"})
    wf.add_node("TemplateNode", "join", {"template": "{l}+{r}"})
    wf.add_connection("left", "met", "join", "l")
    wf.add_connection("right", "met", "join", "r")
    barrier = asyncio.Barrier(2)  # opens only when both branches wait on it together
    result, _, events = await run(wf.build(), {"barrier": barrier})
    assert result == {"result": "True+True"}
    started = [n for n, s, _ in progress(events) if s == "started"]
    assert started[:2] == ["left", "right"] and started[2] == "join"


async def test_a_failing_node_raises_node_error_and_cancels_its_sibling():
    started, cancelled = asyncio.Event(), asyncio.Event()
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "hang", {"function": "tests.engine.hang"})
    wf.add_node("FunctionNode", "boom", {"function": "tests.engine.boom"})
    wf.add_node("TemplateNode", "downstream", {"template": "{x}"})
    wf.add_connection("boom", "result", "downstream", "x")
    events: list = []

    async def emit(event, data):
        events.append((event, data))

    with pytest.raises(NodeError) as info:
        await asyncio.wait_for(
            run_graph(wf.build(), {"started": started, "cancelled": cancelled, "after": started}, emit, "r"),
            WAIT,
        )
    assert info.value.extra["node"] == "boom"
    assert info.value.message == "node 'boom' failed: ValueError: kaboom"
    assert isinstance(info.value.__cause__, ValueError)
    assert cancelled.is_set()  # the sibling was cancelled, not left running
    assert progress(events) == [("hang", "started", 0), ("boom", "started", 0)]  # "downstream" never started


async def test_a_sync_node_runs_in_a_thread_without_blocking_the_loop():
    entered, release = threading.Event(), threading.Event()
    graph = build_one("FunctionNode", {"function": "tests.engine.block"})
    task = asyncio.ensure_future(run(graph, {"entered": entered, "release": release}))
    # wait (off the loop) until the sync node is inside its blocking wait
    assert await asyncio.to_thread(entered.wait, WAIT)
    # the loop still runs other coroutines while the node blocks its thread
    ticks = asyncio.Event()

    async def other_work():
        ticks.set()

    await asyncio.wait_for(asyncio.ensure_future(other_work()), WAIT)
    assert ticks.is_set() and not task.done()
    release.set()
    result, _, _ = await task
    assert result["released"] is True  # it was still waiting, so nothing blocked the loop
    assert result["thread"] != threading.get_ident()


async def test_a_sync_node_can_stream_tokens_from_its_thread():
    result, _, events = await run(
        build_one("FunctionNode", {"function": "tests.engine.sync_tokens"}), {"words": ["a ", "b ", "c"]}
    )
    assert [d for e, d in events if e == "token"] == [{"node": "n", "delta": w} for w in ("a ", "b ", "c")]
    assert result == {"count": 3}


async def test_llm_agent_tokens_from_the_offline_provider_reconstruct_the_response():
    graph = build_one("LLMAgentNode", {"system_prompt": "be kind", "model": "demo"})
    result, _, events = await run(
        graph,
        {
            "message": "Hello there",
            "messages": [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}],
        },
    )
    tokens = [d["delta"] for e, d in events if e == "token"]
    assert len(tokens) > 5
    assert "".join(tokens) == result["response"]
    assert 'You said: "Hello there"' in result["response"] and "message 2 of" in result["response"]
    assert result["metadata"]["provider"] == "offline" and result["metadata"]["model"] == "demo"
    assert result["metadata"]["usage"]["completion_tokens"] == len(tokens)
    names = [e if e == "token" else d["status"] for e, d in events]
    assert names[0] == "started" and names[-1] == "completed" and set(names[1:-1]) == {"token"}


async def test_llm_agent_respects_max_tokens():
    result, _, events = await run(
        build_one("LLMAgentNode", {"max_tokens": 3}), {"prompt": "one two three four"}
    )
    assert len([e for e, _ in events if e == "token"]) == 3
    assert result["response"] == 'You said: "one '


async def test_llm_agent_refuses_a_malformed_history():
    with pytest.raises(ValidationError, match="role") as info:
        await run(build_one("LLMAgentNode", {}), {"messages": [{"role": "wizard", "content": "x"}]})
    assert info.value.path == "inputs.messages" and info.value.extra["node"] == "n"


async def test_connections_follow_dotted_output_paths():
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "user", {"function": "tests.engine.user"})
    wf.add_node("TemplateNode", "greet", {"template": "Hi {name}, {langs}"})
    wf.add_connection("user", "user.name", "greet", "name")
    wf.add_connection("user", "user.langs", "greet", "langs")
    result, _, _ = await run(wf.build(), {})
    assert result == {"result": "Hi Ada, ['en', 'fr']"}


async def test_a_missing_output_path_fails_the_node_that_needs_it():
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "user", {"function": "tests.engine.user"})
    wf.add_node("TemplateNode", "greet", {"template": "{name}"})
    wf.add_connection("user", "user.email", "greet", "name")
    with pytest.raises(NodeError, match=re.escape("node 'user' produced no output 'user.email'")):
        await run(wf.build(), {})


async def test_result_of_a_node_without_a_result_key_is_its_whole_output():
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "p", {"function": "tests.engine.plain"})
    wf.add_node("FunctionNode", "e", {"function": "tests.engine.echo"})
    wf.connect("p", "e", {"result": "value"})
    result, _, _ = await run(wf.build(), {})
    assert result == {"value": {"a": 1, "b": 2}}


async def test_a_single_sink_gives_its_output_and_several_sinks_a_dict_per_sink():
    single = template("a", "b")
    single.add_connection("a", "result", "b", "x")
    result, _, _ = await run(single.build(), {"x": "v"})
    assert result == {"result": "v"}

    several = template("a", "b", "c")
    several.add_connection("a", "result", "b", "x")
    result, outputs, _ = await run(several.build(), {"x": "v"})
    assert result == {"b": {"result": "v"}, "c": {"result": "v"}}
    assert set(outputs) == {"a", "b", "c"}


async def test_node_scoped_inputs_win_over_flat_ones_and_connections_over_both():
    wf = template("a", "b")
    wf.add_node("TemplateNode", "c", {"template": "{x}"})
    wf.add_connection("a", "result", "c", "x")
    result, _, _ = await run(wf.build(), {"x": "flat", "b": {"x": "scoped"}, "c": {"x": "ignored"}})
    assert result == {"b": {"result": "scoped"}, "c": {"result": "flat"}}


async def test_a_required_input_missing_at_run_time_is_a_validation_error():
    # a declared input_schema may not require what the nodes need; the run then fails clearly
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "f", {"function": "tests.engine.typed"})
    wf.set_input_schema({"type": "object"})
    with pytest.raises(ValidationError) as info:
        await run(wf.build(), {})
    assert info.value.message == "node 'f' is missing required input(s): count"
    assert info.value.path == "inputs.count" and info.value.extra["node"] == "f"
