"""Baseline B: sse-starlette on uvicorn, the same events (run in benchmarks/.venvs/starlette)."""

import asyncio
import json
import time
import uuid

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.routing import Route


def _event(run_id, seq, name, data):
    return {"id": f"{run_id}:{seq}", "event": name, "data": json.dumps({**data, "run_id": run_id})}


async def one(request):
    run_id = str(uuid.uuid4())

    async def body():
        yield _event(
            run_id, 1, "start", {"workflow_id": "bench_one", "version": "1.0.0", "timestamp": time.time()}
        )
        yield _event(
            run_id,
            2,
            "progress",
            {"node": "node", "status": "started", "percent": 0, "timestamp": time.time()},
        )
        yield _event(
            run_id,
            3,
            "progress",
            {"node": "node", "status": "completed", "percent": 100, "timestamp": time.time()},
        )
        yield _event(
            run_id,
            4,
            "complete",
            {
                "result": {"ok": True},
                "outputs": {"node": {"ok": True}},
                "execution_time": 0.0001,
                "timestamp": time.time(),
            },
        )

    return EventSourceResponse(body(), ping=15)


async def tokens(request):
    n = int(request.query_params.get("n", 1000))
    run_id = str(uuid.uuid4())

    async def body():
        yield _event(
            run_id, 1, "start", {"workflow_id": "bench_tokens", "version": "1.0.0", "timestamp": time.time()}
        )
        for i in range(n):
            yield _event(run_id, i + 2, "token", {"node": "node", "delta": "tok "})
        yield _event(run_id, n + 2, "complete", {"result": {"tokens": n}, "timestamp": time.time()})

    return EventSourceResponse(body(), ping=15)


async def idle(request):
    run_id = str(uuid.uuid4())

    async def body():
        yield _event(
            run_id, 1, "start", {"workflow_id": "bench_idle", "version": "1.0.0", "timestamp": time.time()}
        )
        await asyncio.Event().wait()

    return EventSourceResponse(body(), ping=15)


app = Starlette(
    routes=[
        Route("/one", one, methods=["GET", "POST"]),
        Route("/tokens", tokens, methods=["GET", "POST"]),
        Route("/idle", idle, methods=["GET", "POST"]),
    ]
)
