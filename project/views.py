"""A demo of nexus_sse.sse_response in a site's own view: a countdown streamed as SSE."""

import asyncio

from django.http import HttpRequest, JsonResponse

from nexus_sse import sse_response

#: how many countdown streams have ended (their generator's ``finally`` ran), for the demo and tests
finished_streams = 0


def _bounded(request: HttpRequest, name: str, default: float, low: float, high: float) -> float:
    try:
        value = float(request.GET.get(name, default))
    except ValueError:
        value = default
    return min(max(value, low), high)


async def countdown(request: HttpRequest):
    """GET /demo/countdown?start=5&pace=1&keepalive=15: "tick" events from start down to 0."""
    start = int(_bounded(request, "start", 5, 0, 100))
    pace = _bounded(request, "pace", 1.0, 0.0, 60.0)
    keepalive = _bounded(request, "keepalive", 15.0, 0.05, 60.0)

    async def events():
        global finished_streams
        try:
            for n in range(start, -1, -1):
                yield {"event": "tick", "data": {"remaining": n}, "id": str(n)}
                if n:
                    await asyncio.sleep(pace)
            yield {"event": "done", "data": {"remaining": 0}}
        finally:
            finished_streams += 1  # runs on normal end and on client disconnect alike

    return sse_response(events(), request=request, keepalive=keepalive)


async def countdown_stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"finished_streams": finished_streams})
