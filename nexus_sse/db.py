"""Database calls of nexus_sse, on a few dedicated threads with long-lived connections.

Django gives every ASGI request a thread of its own, and with it a database connection that is
opened and closed per request: for a run that lasts a millisecond, connecting costs more than the
queries. nexus_sse's own queries run here instead, on ``DB_THREADS`` threads (1 for SQLite, whose
writes are serialised anyway) whose connections stay open.

Django applies ``CONN_MAX_AGE`` and ``CONN_HEALTH_CHECKS`` between requests; these threads have no
requests, so they apply the same rule (``close_if_unusable_or_obsolete``) before a call at most once
every CONNECTION_CHECK_SECONDS, and before every call after a database error. Per call, with
``CONN_MAX_AGE = 0`` (what ASGI sites set), it would reconnect for every query of every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import operator
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from nexus_sse import conf

logger = logging.getLogger("nexus_sse.db")

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: a DB thread applies Django's between-requests rule to its connections at most this often
CONNECTION_CHECK_SECONDS = 1.0

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


#: per DB thread: when it next applies Django's rule (``next_check``, time.monotonic())
_thread = threading.local()


def _checked(func: Callable[..., T], args: tuple, kwargs: dict) -> T:
    now = time.monotonic()
    due = now >= getattr(_thread, "next_check", 0.0)
    if due:
        _thread.next_check = now + CONNECTION_CHECK_SECONDS
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and (due or conn.errors_occurred):
            # Closes a connection older than CONN_MAX_AGE, or broken after an error; with
            # CONN_HEALTH_CHECKS, the next query checks it first (and reconnects if it is down).
            conn.close_if_unusable_or_obsolete()
    return func(*args, **kwargs)


async def call(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the sync ``func`` on a nexus_sse database thread and return its result."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_get_executor(), functools.partial(_checked, func, args, kwargs))


class _GroupCommit:
    """Writes submitted while a transaction is being written share the next one.

    A short run writes its row and events once; at many runs a second, a commit per run costs more
    than the inserts themselves (and holds the GIL the event loop needs). So writes queue up here and
    go out together: the first at once, the ones that arrive meanwhile in one transaction after it.
    If that shared transaction fails, each of its writes is retried alone, so one bad write (say, a
    run whose workflow row was just replaced) fails by itself.
    """

    def __init__(self, using: str) -> None:
        #: the database alias of every write here (one transaction cannot span two databases)
        self.using = using
        self.pending: list[tuple[Callable[..., Any], tuple, asyncio.Future]] = []
        #: the task writing batches until none is pending (done: none is)
        self.task: asyncio.Future | None = None

    async def submit(self, func: Callable[..., Any], args: tuple) -> None:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((func, args, future))
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self.drain())
        await future

    async def drain(self) -> None:
        try:
            while self.pending:
                await self.write_batch()
        finally:
            # A finished task still references its loop: let go of it, so the loop (the key of
            # this group in _group_commits) can go once it is closed.
            self.task = None

    async def write_batch(self) -> None:
        batch, self.pending = self.pending, []
        writes = [(func, args) for func, args, _ in batch]
        try:
            outcomes = await call(_write_together, writes, self.using)
        except Exception as exc:  # the executor itself failed (say, shut down)
            outcomes = [exc] * len(batch)
        for (_, _, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue
            if outcome is None:
                future.set_result(None)
            else:
                future.set_exception(outcome)


def batched(many: Callable[[list[tuple]], None]) -> Callable[[F], F]:
    """Give a write function a form for many calls: ``many([args, ...])`` does what ``func(*args)``
    does for each of them, together (one statement executed for all rows, say).

    When consecutive writes in a shared transaction are of the same function, ``write`` hands them to
    that form: at many short runs a second, one executemany per batch costs about half as much as a
    statement per run (Django's cursor layer and its parameter rewriting, once instead of per run)."""

    def mark(func: F) -> F:
        func.write_many = many  # type: ignore[attr-defined]
        return func

    return mark


def _write_together(
    writes: list[tuple[Callable[..., Any], tuple]], using: str = DEFAULT_DB_ALIAS
) -> list[BaseException | None]:
    if len(writes) > 1:
        try:
            with transaction.atomic(using=using):
                for func, group in itertools.groupby(writes, key=operator.itemgetter(0)):
                    calls = [args for _, args in group]
                    many = getattr(func, "write_many", None)
                    if many is not None and len(calls) > 1:
                        many(calls)
                    else:
                        for args in calls:
                            func(*args)
            return [None] * len(writes)
        except Exception:
            # Rolled back: now each alone (in its own transaction), so only the bad one fails. If
            # all then succeed, this is the only trace of what made the shared one fail.
            logger.warning(
                "a shared transaction of %d writes failed; writing each alone", len(writes), exc_info=True
            )
    outcomes: list[BaseException | None] = []
    for func, args in writes:
        try:
            func(*args)
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


#: per event loop, per database alias (tests run many loops; a closed loop's entry goes with it)
_group_commits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _GroupCommit]] = (
    weakref.WeakKeyDictionary()
)


async def write(func: Callable[..., Any], *args: Any, using: str = DEFAULT_DB_ALIAS) -> None:
    """Run the sync write ``func(*args)`` in a transaction shared with writes submitted meanwhile.

    ``func`` must be atomic by itself (alone it runs in no transaction of ours) and only write to the
    database ``using``: it may run twice, in a shared transaction that rolled back and then alone. Use
    ``transaction.atomic(using=..., savepoint=False)`` inside it. An exception it raises is raised here.
    """
    loop = asyncio.get_running_loop()
    groups = _group_commits.get(loop)
    if groups is None:
        groups = _group_commits[loop] = {}
    group = groups.get(using)
    if group is None:
        group = groups[using] = _GroupCommit(using)
    await group.submit(func, args)


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
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        connections.close_all()

    for future in [executor.submit(close_here) for _ in range(workers)]:
        future.result()
    executor.shutdown(wait=True)
