"""In-memory event log: the default, for one process. Waiters are plain futures, no polling.

Memory per run is bounded: the log keeps a run's newest ``MAXLEN`` events (option, default 10,000)
plus any older one not yet archived to the database; a reader behind that window gets the older
events from the archive (streaming.py), as with the Redis log's ``MAXLEN``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.checks import Error

from nexus_sse import conf, sse
from nexus_sse.eventlog.base import (
    EXECUTOR_ID,
    READ_BATCH,
    BaseEventLog,
    LogEvent,
    SequenceConflict,
    Waiters,
)

#: default ``EVENT_LOG_OPTIONS["MAXLEN"]``: ~3 MB of events per long run (about 280 bytes each)
DEFAULT_MAXLEN = 10_000


class _RunLog:
    """One run's events ``base + 1 .. base + len(events)``; events up to ``base`` were let go."""

    __slots__ = ("archived", "base", "closed", "events", "subscribers", "waiters")

    def __init__(self) -> None:
        self.events: list[LogEvent] = []
        self.base = 0  # seq of the last event dropped from the front (all archived)
        self.archived = 0  # every event up to this seq is in the database
        self.waiters = Waiters()
        self.subscribers = 0
        self.closed = False

    @property
    def head(self) -> int:
        return self.base + len(self.events)

    def after(self, seq: int, limit: int | None = None) -> list[LogEvent]:
        start = max(seq - self.base, 0)  # index of seq + 1 (or the oldest kept event)
        return self.events[start:] if limit is None else self.events[start : start + limit]

    def trim(self, maxlen: int) -> None:
        """Drop archived events older than the newest ``maxlen`` (never one not yet archived)."""
        upto = min(self.archived, self.head - maxlen)
        if upto > self.base:
            del self.events[: upto - self.base]
            self.base = upto


class MemoryEventLog(BaseEventLog):
    """Keep each run's recent events in a list; finished runs are dropped after the retention period."""

    shared = False
    append_is_immediate = True

    def __init__(self, **options: Any) -> None:
        self._runs: dict[str, _RunLog] = {}
        self.maxlen = int(options.get("MAXLEN", DEFAULT_MAXLEN))

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> list:
        unknown = set(options) - {"MAXLEN"}
        if unknown:
            return [
                Error(
                    f"Unknown NEXUS_SSE['EVENT_LOG_OPTIONS'] keys for memory: {sorted(unknown)}",
                    hint="The in-memory log takes MAXLEN only.",
                    id="nexus_sse.E008",
                )
            ]
        maxlen = options.get("MAXLEN", DEFAULT_MAXLEN)
        if not (isinstance(maxlen, int) and not isinstance(maxlen, bool) and maxlen > 0):
            return [
                Error(
                    "NEXUS_SSE['EVENT_LOG_OPTIONS']['MAXLEN'] must be a positive integer.",
                    hint=f"Events kept in memory per run beyond those not yet archived "
                    f"(default {DEFAULT_MAXLEN}).",
                    id="nexus_sse.E008",
                )
            ]
        return []

    def _run(self, run_id: str) -> _RunLog:
        log = self._runs.get(run_id)
        if log is None:
            log = self._runs[run_id] = _RunLog()
        return log

    async def append(self, run_id: str, event: str, data: dict[str, Any], seq: int | None = None) -> LogEvent:
        log = self._run(run_id)
        if log.closed:
            raise SequenceConflict(f"run {run_id} already ended; cannot append {event!r}")
        if seq is not None and seq != log.head + 1:
            raise SequenceConflict(f"run {run_id}: expected seq {log.head + 1}, got {seq}")
        item = LogEvent(run_id, log.head + 1, event, sse.dumps(data))
        log.events.append(item)
        log.closed = item.terminal
        if log.waiters:
            log.waiters.wake()
        return item

    async def read_after(self, run_id: str, seq: int) -> list[LogEvent]:
        log = self._runs.get(run_id)
        return log.after(seq) if log else []

    async def wait_after(
        self,
        run_id: str,
        seq: int,
        timeout: float | None,  # noqa: ASYNC109  (a timer, not asyncio.timeout: Waiters)
    ) -> list[LogEvent]:
        log = self._run(run_id)
        if log.head > seq or log.closed:
            return log.after(seq, READ_BATCH)
        fut, timer = log.waiters.park(asyncio.get_running_loop(), timeout)
        try:
            await fut
        finally:
            log.waiters.unpark(fut, timer)
        return log.after(seq, READ_BATCH)

    async def archived(self, run_id: str, seq: int) -> None:
        log = self._runs.get(run_id)
        if log is not None and seq > log.archived:
            log.archived = seq
            log.trim(self.maxlen)

    def wake_all(self) -> None:
        for log in self._runs.values():
            log.waiters.wake()

    async def last_event(self, run_id: str) -> LogEvent | None:
        log = self._runs.get(run_id)
        return log.events[-1] if log and log.events else None

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
