"""Building workflows: every malformed graph fails with a clear error naming where."""

import asyncio
import threading

import pytest

import nexus_sse
from nexus_sse.exceptions import NodeError, ValidationError, WorkflowDefinitionError
from nexus_sse.workflows.builder import WorkflowBuilder
from nexus_sse.workflows.runtime import run_graph
from nexus_sse.workflows.schema import validate_inputs


def chain(*connections, nodes=("a", "b")):
    wf = WorkflowBuilder()
    for node in nodes:
        wf.add_node("TemplateNode", node, {"template": "{x}"})
    for conn in connections:
        wf.add_connection(*conn)
    return wf


@pytest.mark.parametrize(
    ("build", "message", "path"),
    [
        (lambda: chain(("a", "result", "b", "x"), ("b", "result", "a", "x")).build(), "cycle", "connections"),
        (lambda: chain(("a", "result", "ghost", "x")).build(), "unknown node 'ghost'", "connections.0"),
        (lambda: chain(("a", "result", "b", "nope")).build(), "has no input 'nope'", "connections.0"),
        (
            lambda: chain(("a", "result", "b", "x"), ("a", "result", "b", "x")).build(),
            "connected twice",
            "connections.1",
        ),
        (lambda: WorkflowBuilder().build(), "at least one node", "nodes"),
    ],
)
def test_invalid_graphs_are_refused(build, message, path):
    with pytest.raises(WorkflowDefinitionError) as info:
        build()
    assert message in info.value.message
    assert info.value.path == path


def test_unknown_node_type_and_duplicate_ids_are_refused():
    wf = WorkflowBuilder()
    wf.add_node("NoSuchNode", "x", {})
    with pytest.raises(WorkflowDefinitionError, match="unknown node type 'NoSuchNode'"):
        wf.build()
    wf = WorkflowBuilder()
    wf.add_node("TemplateNode", "x", {"template": "hi"})
    with pytest.raises(WorkflowDefinitionError, match="duplicate node id"):
        wf.add_node("TemplateNode", "x", {"template": "hi"})


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"id": "t", "type": "TemplateNode", "config": {"template": "{x.__class__}"}}, "plain name"),
        ({"id": "t", "type": "TemplateNode", "config": {"template": "{"}}, "bad template"),
        ({"id": "f", "type": "FunctionNode", "config": {"function": "not.registered"}}, "unknown function"),
        ({"id": "l", "type": "LLMAgentNode", "config": {"temperature": 5}}, "temperature"),
        ({"id": "l", "type": "LLMAgentNode", "config": {"max_tokens": 0}}, "max_tokens"),
        ({"id": "l", "type": "LLMAgentNode", "config": {"colour": "red"}}, "unknown config keys"),
    ],
)
def test_bad_node_config_is_refused(node, message):
    with pytest.raises(WorkflowDefinitionError, match=message):
        WorkflowBuilder.from_dict({"nodes": [node]}).build()


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ([], ""),
        ({"nodes": []}, "nodes"),
        ({"nodes": [{"id": "a"}]}, "nodes.0"),
        (
            {
                "nodes": [{"id": "a", "type": "TemplateNode", "config": {"template": "x"}}],
                "connections": [{"from": "a"}],
            },
            "connections.0",
        ),
        ({"nodes": [{"id": "a", "type": "TemplateNode", "config": {"template": "x"}}], "extra": 1}, ""),
    ],
)
def test_json_definitions_name_the_failing_path(definition, path):
    with pytest.raises(WorkflowDefinitionError) as info:
        WorkflowBuilder.from_dict(definition).build()
    assert info.value.path == path


def test_definition_round_trips_through_json():
    wf = chain(("a", "result", "b", "x"))
    again = WorkflowBuilder.from_dict(wf.to_dict())
    assert again.to_dict() == wf.to_dict()
    assert again.build().order == ["a", "b"]


def test_derived_input_schema_requires_open_inputs_and_refuses_unknown_ones():
    schema = chain(("a", "result", "b", "x")).build().input_schema
    validate_inputs(schema, {"x": "hi"})
    with pytest.raises(ValidationError, match="missing input"):
        validate_inputs(schema, {})
    with pytest.raises(ValidationError, match="unknown input") as info:
        validate_inputs(schema, {"x": "hi", "y": 1})
    assert info.value.path == "inputs"


def test_llm_agent_needs_one_of_its_message_inputs():
    wf = WorkflowBuilder()
    wf.add_node("LLMAgentNode", "agent", {"model": "gpt-4"})
    schema = wf.build().input_schema
    validate_inputs(schema, {"message": "hi"})
    validate_inputs(schema, {"messages": [{"role": "user", "content": "hi"}]})
    with pytest.raises(ValidationError, match="missing input"):
        validate_inputs(schema, {})
    with pytest.raises(ValidationError) as info:
        validate_inputs(schema, {"message": 3})
    assert info.value.path == "inputs.message"


async def collect(graph, inputs):
    events = []

    async def emit(event, data):
        events.append((event, data))

    result = await run_graph(graph, inputs, emit, "run-1")
    return result, events


async def test_runtime_reports_progress_per_node_and_returns_the_sink_output():
    (result, outputs), events = await collect(chain(("a", "result", "b", "x")).build(), {"a": {"x": "hi"}})
    assert result == {"result": "hi"} and outputs == {"a": {"result": "hi"}, "b": {"result": "hi"}}
    assert [(d["node"], d["status"], d["percent"]) for _, d in events] == [
        ("a", "started", 0),
        ("a", "completed", 50),
        ("b", "started", 50),
        ("b", "completed", 100),
    ]


async def test_several_sinks_give_a_result_per_sink():
    (result, _), _ = await collect(chain(nodes=("a", "b")).build(), {"x": "v"})
    assert result == {"a": {"result": "v"}, "b": {"result": "v"}}


async def test_llm_agent_tokens_add_up_to_the_response():
    wf = WorkflowBuilder()
    wf.add_node("LLMAgentNode", "agent", {"system_prompt": "be kind"})
    (result, _), events = await collect(wf.build(), {"message": "Hello there"})
    tokens = [d["delta"] for e, d in events if e == "token"]
    assert len(tokens) > 3 and "".join(tokens) == result["response"]
    assert "Hello there" in result["response"] and result["metadata"]["provider"] == "offline"


async def test_a_failing_node_raises_node_error_and_cancels_its_sibling():
    sibling_cancelled = asyncio.Event()

    @nexus_sse.register_function("tests.engine.wait_forever")
    async def wait_forever() -> dict:
        try:
            await asyncio.Event().wait()
        finally:
            sibling_cancelled.set()

    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "forever", {"function": "tests.engine.wait_forever"})
    wf.add_node("FunctionNode", "boom", {"function": "tests.fail"})
    with pytest.raises(NodeError) as info:
        await collect(wf.build(), {})
    assert info.value.extra["node"] == "boom"
    assert sibling_cancelled.is_set()


async def test_a_sync_node_runs_in_a_thread_and_does_not_block_the_loop():
    release = threading.Event()

    @nexus_sse.register_function("tests.engine.blocker")
    def blocker() -> dict:
        assert release.wait(10), "the event loop never got to release the sync node"
        return {"done": True}

    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "block", {"function": "tests.engine.blocker"})
    task = asyncio.ensure_future(collect(wf.build(), {}))
    await asyncio.sleep(0)  # let the node start; if it blocked the loop we would never get past here
    release.set()
    (result, _), _ = await task
    assert result == {"done": True}
