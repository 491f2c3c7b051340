"""What BaseNode declares for node authors: per-node params, either-or inputs, open inputs, invoke()."""

import threading

import pytest

from nexus_sse.exceptions import WorkflowDefinitionError
from nexus_sse.workflows.builder import Connection, WorkflowGraph
from nexus_sse.workflows.builtin import TemplateNode
from nexus_sse.workflows.nodes import BaseNode, Param, invoke
from nexus_sse.workflows.runtime import run_graph


class Echo(BaseNode):
    """Return its inputs (not registered: graphs here are built from instances)."""

    type_name = "Echo"
    params = {"x": Param(type="string")}

    async def run(self, ctx, **inputs):
        return dict(inputs)


class OpenEcho(Echo):
    accepts_any_input = True


class EitherEcho(Echo):
    params = {"a": Param(type="string"), "b": Param(type="string")}
    requires_one_of = ("a", "b")


def feeding(target):
    source = TemplateNode("src", {"template": "hi"})
    return WorkflowGraph({"src": source, "dst": target}, [Connection("src", "result", "dst", "extra")])


def test_a_connection_to_an_undeclared_input_is_refused_by_default():
    with pytest.raises(WorkflowDefinitionError, match="has no input 'extra'"):
        feeding(Echo("dst"))


async def test_a_node_that_accepts_any_input_receives_undeclared_ones():
    async def emit(event, data):
        pass

    result, _ = await run_graph(feeding(OpenEcho("dst")), {}, emit, "run-1")
    assert result == {"extra": "hi"}


def test_requires_one_of_makes_the_schema_ask_for_one_of_the_inputs():
    schema = WorkflowGraph({"e": EitherEcho("e")}, []).input_schema
    assert schema["allOf"] == [{"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}]
    assert "allOf" not in WorkflowGraph({"e": EitherEcho("e", {"a": "given"})}, []).input_schema


def test_params_set_by_one_node_stay_with_that_node():
    first = TemplateNode("t1", {"template": "{a}"})
    second = TemplateNode("t2", {"template": "{b}"})
    assert set(first.params) == {"a"} and set(second.params) == {"b"}
    assert TemplateNode.params == {} and BaseNode.params == {}


async def test_invoke_runs_coroutines_on_the_loop_and_sync_callables_in_a_thread():
    loop_thread = threading.get_ident()

    async def on_loop(x):
        return x, threading.get_ident()

    def in_thread(x):
        return x, threading.get_ident()

    assert await invoke(on_loop, x=1) == (1, loop_thread)
    value, thread = await invoke(in_thread, 2)
    assert value == 2 and thread != loop_thread
