"""Workflows used by the tests (discovered because tests/settings.py installs the "tests" app).

Add new test workflows at the end of this file; do not change existing ones (several test modules
rely on them).
"""

import asyncio
import time

import nexus_sse
from nexus_sse import WorkflowBuilder


@nexus_sse.register_function("tests.sleep")
async def sleep(seconds: float = 1.0) -> dict:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@nexus_sse.register_function("tests.tokens")
async def tokens(count: int = 10, delay: float = 0.05, ctx=None) -> dict:
    parts = []
    for i in range(count):
        if delay:
            await asyncio.sleep(delay)
        parts.append(f"t{i} ")
        await ctx.token(parts[-1])
    return {"text": "".join(parts)}


@nexus_sse.register_function("tests.fail")
def fail(message: str = "secret internal detail") -> dict:
    raise ValueError(message)


@nexus_sse.register_function("tests.block")
def block(seconds: float = 1.0) -> dict:
    time.sleep(seconds)
    return {"blocked": seconds}


@nexus_sse.register_function("tests.typed")
def typed(count: int, ratio: float = 0.5, flag: bool = False, tags: list = (), name: str = "x") -> dict:
    return {"count": count, "ratio": ratio, "flag": flag, "tags": list(tags), "name": name}


def _one(node_type: str, node_id: str, config: dict) -> WorkflowBuilder:
    wf = WorkflowBuilder()
    wf.add_node(node_type, node_id, config)
    return wf


# slow: one node that sleeps `seconds` (default 1.0)
nexus_sse.register("slow", _one("FunctionNode", "sleep", {"function": "tests.sleep"}))
# tokens: `count` token events, `delay` seconds apart
nexus_sse.register("tokens", _one("FunctionNode", "tokens", {"function": "tests.tokens"}))
# fail: the node raises ValueError(message)
nexus_sse.register("fail", _one("FunctionNode", "fail", {"function": "tests.fail"}))
# blocking: a sync node that blocks its worker thread for `seconds`
nexus_sse.register("blocking", _one("FunctionNode", "block", {"function": "tests.block"}))
# typed: required integer `count`, number `ratio`, boolean `flag`, array `tags`, string `name`
nexus_sse.register("typed", _one("FunctionNode", "typed", {"function": "tests.typed"}))

# steps: tokens then sleep then a template: several progress events and a multi-node result
steps = WorkflowBuilder()
steps.add_node("FunctionNode", "tokens", {"function": "tests.tokens"})
steps.add_node("FunctionNode", "sleep", {"function": "tests.sleep"})
steps.add_node("TemplateNode", "report", {"template": "{text}|{slept}"})
steps.add_connection("tokens", "text", "report", "text")
steps.add_connection("sleep", "slept", "report", "slept")
nexus_sse.register("steps", steps)

# fake_llm / fake_llm_broken: LLMAgentNode on the provider alias "fake" (tests/fake_openai.py)
nexus_sse.register(
    "fake_llm",
    _one(
        "LLMAgentNode",
        "agent",
        {
            "provider": "fake",
            "model": "fake",
            "system_prompt": "You are terse.",
            "temperature": 0.2,
            "max_tokens": 64,
        },
    ),
)
nexus_sse.register(
    "fake_llm_broken", _one("LLMAgentNode", "agent", {"provider": "fake", "model": "fake-401"})
)


@nexus_sse.register_function("tests.token_bursts")
async def token_bursts(
    count: int = 1000, burst: int = 100, pause: float = 0.0, pad: int = 0, ctx=None
) -> dict:
    for i in range(count):
        if i % burst == 0:
            await asyncio.sleep(pause)  # let streams run between bursts (a plain loop would starve them)
        await ctx.token(f"t{i} " + "x" * pad)
    return {"count": count}


# bursts: `count` token events (`pad` extra bytes each), `burst` at a time, `pause` seconds apart
nexus_sse.register("bursts", _one("FunctionNode", "bursts", {"function": "tests.token_bursts"}))
