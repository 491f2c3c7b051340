"""Benchmark workflows: one trivial node, a token stream with no delay, an idle run, a gated run."""

import asyncio
import os
import time

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


@nexus_sse.register_function("bench.gated")
async def gated(n: int = 1000, gate: str = "", ctx=None) -> dict:
    """Wait until the file ``gate`` exists (the fan-out's subscribers are all attached), then stream."""
    deadline = time.monotonic() + 60
    # a stat per poll, off the event loop: the server's loop is serving the attaching subscribers
    while gate and not await asyncio.to_thread(os.path.exists, gate):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {gate} never opened")
        await asyncio.sleep(0.002)
    for _ in range(n):
        await ctx.token("tok ")
    return {"tokens": n}


for name, function in (
    ("bench_one", "bench.one"),
    ("bench_tokens", "bench.tokens"),
    ("bench_idle", "bench.idle"),
    ("bench_gated", "bench.gated"),
):
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "node", {"function": function})
    nexus_sse.register(name, wf)
