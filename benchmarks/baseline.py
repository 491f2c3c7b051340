"""Baseline A: bare Django async views streaming the same events as nexus_sse (no nexus_sse code)."""

import asyncio
import json
import time
import uuid

from django.http import StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt


def _event(run_id: str, seq: int, name: str, data: dict) -> bytes:
    data = {**data, "run_id": run_id}
    return f"id: {run_id}:{seq}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _response(body) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@csrf_exempt
async def one(request):
    """start, progress started, progress completed, complete: the bytes of nexus_sse's one-node run."""
    run_id = str(uuid.uuid4())

    async def body():
        yield b"retry: 3000\n\n"
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
        ) + _event(
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

    return _response(body())


@csrf_exempt
async def tokens(request):
    n = int(request.GET.get("n", 1000))
    run_id = str(uuid.uuid4())

    async def body():
        yield b"retry: 3000\n\n"
        yield _event(
            run_id, 1, "start", {"workflow_id": "bench_tokens", "version": "1.0.0", "timestamp": time.time()}
        )
        for i in range(n):
            yield _event(run_id, i + 2, "token", {"node": "node", "delta": "tok "})
            if i % 64 == 0:
                await asyncio.sleep(0)
        yield _event(run_id, n + 2, "complete", {"result": {"tokens": n}, "timestamp": time.time()})

    return _response(body())


@csrf_exempt
async def idle(request):
    run_id = str(uuid.uuid4())

    async def body():
        yield b"retry: 3000\n\n"
        yield _event(
            run_id, 1, "start", {"workflow_id": "bench_idle", "version": "1.0.0", "timestamp": time.time()}
        )
        while True:
            await asyncio.sleep(15)
            yield b":keepalive\n\n"

    return _response(body())
