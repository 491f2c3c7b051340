"""A benchmark-site-only view: allocations traced since ``?action=start``, by source line (profile.py)."""

import asyncio
import tracemalloc

from django.http import JsonResponse

_baseline: list[tracemalloc.Snapshot] = []


async def tracemalloc_view(request):
    if request.GET.get("action") == "start":
        tracemalloc.start(1)
        _baseline[:] = [tracemalloc.take_snapshot()]
        return JsonResponse({"tracing": True})
    if not _baseline:
        return JsonResponse(
            {"error": "start tracing first (?action=start)", "error_type": "ValidationError"}, status=400
        )
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    stats = snapshot.compare_to(_baseline[0], "lineno")
    top = int(request.GET.get("top", 25))
    files = snapshot.compare_to(_baseline[0], "filename")
    tasks = sum(1 for _ in asyncio.all_tasks())
    return JsonResponse(
        {
            "total_kb": sum(s.size_diff for s in stats) / 1024,
            "tasks": tasks,
            "files": [
                {"kb": s.size_diff / 1024, "where": s.traceback[0].filename.split("site-packages/")[-1]}
                for s in files[:top]
            ],
            "lines": [
                {
                    "kb": s.size_diff / 1024,
                    "count": s.count_diff,
                    "where": f"{s.traceback[0].filename.split('site-packages/')[-1]}:{s.traceback[0].lineno}",
                }
                for s in stats[:top]
            ],
        }
    )
