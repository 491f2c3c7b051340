"""Database calls of nexus_sse, on a few dedicated threads with long-lived connections.

Django gives every ASGI request a thread of its own, and with it a database connection that is
opened and closed per request: for a run that lasts a millisecond, connecting costs more than the
queries. nexus_sse's own queries run here instead, on ``DB_THREADS`` threads (1 for SQLite, whose
writes are serialised anyway) whose connections stay open. A connection that raised a database
error is checked before its next use and replaced if it is broken, as Django does between requests.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connections

from nexus_sse import conf

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def _threads() -> int:
    configured = conf.get("DB_THREADS")
    if configured:
        return int(configured)
    return 1 if connections["default"].vendor == "sqlite" else 4


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=_threads(), thread_name_prefix="nexus_sse-db")
    return _executor


def _checked(func: Callable[..., T], args: tuple, kwargs: dict) -> T:
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()
    return func(*args, **kwargs)


async def call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the sync ``func`` on a nexus_sse database thread and return its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_get_executor(), functools.partial(_checked, func, args, kwargs))


def close_connections() -> None:
    """Close the connections of the database threads (tests, shutdown); threads stay usable."""
    global _executor
    executor, _executor = _executor, None
    if executor is None:
        return
    workers = executor._max_workers
    barrier = threading.Barrier(workers, timeout=10)

    def close_here() -> None:
        # Every task waits for the others, so each runs on a thread of its own: all get closed.
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        connections.close_all()

    for future in [executor.submit(close_here) for _ in range(workers)]:
        future.result()
    executor.shutdown(wait=True)
