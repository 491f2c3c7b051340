"""The run manager: one per process; its watchdog tasks are per event loop and never keep a closed one."""

from __future__ import annotations

import asyncio
import gc
import weakref

from nexus_sse import registry, runs
from nexus_sse.models import Workflow


async def one_run(loops: list[weakref.ref]) -> str:
    """Start a run in this event loop, as a worker task does, and wait for its end."""
    loop = asyncio.get_running_loop()
    loops.append(weakref.ref(loop))
    workflow = await asyncio.to_thread(Workflow.objects.get, slug="greet")
    run = await runs.start(workflow, registry.graph_for(workflow), {"name": "w"}, mode="async")
    executor = runs.local_executor(str(run.pk))
    assert executor is not None and executor.task is not None
    assert loop in runs.manager.watchdog_loops()  # the run is watched in this loop
    end = await runs.wait_for_end(str(run.pk))
    await executor.task
    return end.event


def test_runs_in_twenty_event_loops_leave_no_closed_loop_behind(workflows):
    loops: list[weakref.ref] = []
    ends = [asyncio.run(one_run(loops)) for _ in range(20)]
    assert ends == ["complete"] * 20
    gc.collect()
    assert runs.manager.watchdog_loops() == []
    assert [ref for ref in loops if ref() is not None] == []  # every closed loop could go
    assert runs.running_tasks() == []
