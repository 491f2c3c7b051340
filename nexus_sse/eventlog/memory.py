"""In-memory event log: the default, for one process. Waiters are plain futures, no polling."""

from __future__ import annotations

import asyncio
from typing import Any

from nexus_sse import conf, sse
from nexus_sse.eventlog.base import EXECUTOR_ID, BaseEventLog, LogEvent


class _RunLog:
    __slots__ = ("events", "waiters", "subscribers", "closed")

    def __init__(self) -> None:
        self.events: list[LogEvent] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.subscribers = 0
        self.closed = False


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class MemoryEventLog(BaseEventLog):
    """Keep each run's events in a list; finished runs are dropped after the retention period."""

    shared = False

    def __init__(self, **options: Any) -> None:
        self._runs: dict[str, _RunLog] = {}

    def _run(self, run_id: str) -> _RunLog:
        log = self._runs.get(run_id)
        if log is None:
            log = self._runs[run_id] = _RunLog()
        return log

    async def append(self, run_id: str, event: str, data: dict[str, Any], seq: int | None = None) -> LogEvent:
        log = self._run(run_id)
        if log.closed:
            raise RuntimeError(f"run {run_id} already ended; cannot append {event!r}")
        if seq is not None and seq != len(log.events) + 1:
            raise RuntimeError(f"run {run_id}: expected seq {len(log.events) + 1}, got {seq}")
        item = LogEvent(run_id, len(log.events) + 1, event, sse.dumps(data))
        log.events.append(item)
        log.closed = item.terminal
        waiters, log.waiters = log.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        return item

    async def read_after(self, run_id: str, seq: int) -> list[LogEvent]:
        log = self._runs.get(run_id)
        # seq counts from 1 and list index from 0, so events after seq start at index seq
        return log.events[max(seq, 0):] if log else []

    async def wait_after(self, run_id: str, seq: int, timeout: float | None) -> list[LogEvent]:
        log = self._run(run_id)
        if len(log.events) > seq or log.closed:
            return log.events[max(seq, 0):]
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        log.waiters.append(fut)
        # A timer that resolves the future, rather than asyncio.wait(): the same wake-up, a third of the work.
        timer = loop.call_later(timeout, _wake, fut) if timeout is not None else None
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()
            if not fut.done():
                fut.cancel()
            if fut in log.waiters:
                log.waiters.remove(fut)
        return log.events[max(seq, 0):]

    def wake_all(self) -> None:
        for log in self._runs.values():
            waiters, log.waiters = log.waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def last_event(self, run_id: str) -> LogEvent | None:
        log = self._runs.get(run_id)
        return log.events[-1] if log and log.events else None

    async def exists(self, run_id: str) -> bool:
        log = self._runs.get(run_id)
        return bool(log and log.events)

    async def add_subscriber(self, run_id: str) -> None:
        self._run(run_id).subscribers += 1

    async def remove_subscriber(self, run_id: str) -> None:
        log = self._runs.get(run_id)
        if log:
            log.subscribers -= 1

    async def subscriber_count(self, run_id: str) -> int:
        log = self._runs.get(run_id)
        return log.subscribers if log else 0

    async def executor_alive(self, executor_id: str) -> bool:
        # One process owns the whole log: any other executor's runs died with their process.
        return executor_id == EXECUTOR_ID

    async def finished(self, run_id: str) -> None:
        retention = conf.get("EVENT_LOG_RETENTION_SECONDS")
        asyncio.get_running_loop().call_later(retention, self._drop, run_id)

    def _drop(self, run_id: str) -> None:
        log = self._runs.get(run_id)
        if log is not None and log.subscribers <= 0:
            del self._runs[run_id]
        elif log is not None:  # someone is still reading; try again later
            asyncio.get_running_loop().call_later(conf.get("EVENT_LOG_RETENTION_SECONDS"), self._drop, run_id)
