"""Benchmark workflows: one trivial node, and a token stream with no delay."""

import asyncio

import nexus_sse
from nexus_sse import WorkflowBuilder


@nexus_sse.register_function("bench.one")
async def one() -> dict:
    return {"ok": True}


@nexus_sse.register_function("bench.tokens")
async def tokens(n: int = 1000, ctx=None) -> dict:
    for _ in range(n):
        await ctx.token("tok ")
    return {"tokens": n}


@nexus_sse.register_function("bench.idle")
async def idle(seconds: float = 600.0) -> dict:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


for name, function in (("bench_one", "bench.one"), ("bench_tokens", "bench.tokens"), ("bench_idle", "bench.idle")):
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "node", {"function": function})
    nexus_sse.register(name, wf)
