"""The worker tier: runs executed by Django tasks workers, web processes only stream.

With ``NEXUS_SSE["EXECUTOR"] = "tasks"`` (and the Redis event log), ``runs.start`` records the run as
pending, appends its ``start`` event and enqueues :func:`execute_run` on the ``TASKS_QUEUE`` queue of
the ``TASKS_BACKEND`` backend (Django's tasks framework: ``django.tasks`` on 6.x, the ``django-tasks``
backport on 5.2; e.g. django-tasks-db's database backend and its ``manage.py db_worker``). The worker
claims the run and executes it like a web process would, appending to the shared log, with a heartbeat:
if it dies, followers mark the run interrupted and their streams end.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nexus_sse import conf


def _task_decorator() -> Any:
    try:
        from django.tasks import task
    except ImportError:  # Django 5.2: the backport
        from django_tasks import task  # type: ignore[no-redef]
    return task


@_task_decorator()(queue_name="nexus_sse")
def execute_run(run_id: str) -> None:
    """The task: execute one queued run to its end (in the worker process)."""
    asyncio.run(_execute(run_id))


async def _execute(run_id: str) -> None:
    from nexus_sse import runs
    from nexus_sse.eventlog import get_event_log

    try:
        await runs.execute_queued(run_id)
    finally:
        await get_event_log().close()  # this loop ends with the task; so do its connections


def enqueue(run_id: str) -> None:
    """Queue the run for a worker (backend and queue from NEXUS_SSE, read now)."""
    execute_run.using(backend=conf.get("TASKS_BACKEND"), queue_name=conf.get("TASKS_QUEUE")).enqueue(
        run_id=run_id
    )
