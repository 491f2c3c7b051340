"""The per-run event log, behind one interface, with a process-wide backend instance.

Instances are process-wide (not per async context like Django's connection handlers), so every
request of a process sees the same in-memory log. :class:`EventLogManager` owns the instance
(as channels' ``ChannelLayerManager`` owns its layers): it builds it on first use and closes
it when ``NEXUS_SSE`` changes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from nexus_sse import conf
from nexus_sse.eventlog.base import TERMINAL_EVENTS, BaseEventLog, LogEvent, SequenceConflict

__all__ = [
    "BACKEND_ALIASES",
    "TERMINAL_EVENTS",
    "BaseEventLog",
    "EventLogManager",
    "LogEvent",
    "SequenceConflict",
    "event_logs",
    "get_event_log",
    "reset",
]

logger = logging.getLogger("nexus_sse.eventlog")

BACKEND_ALIASES = {
    "memory": "nexus_sse.eventlog.memory.MemoryEventLog",
    "redis": "nexus_sse.eventlog.redis.RedisEventLog",
}


class InvalidEventLogBackend(ImproperlyConfigured):
    """NEXUS_SSE["EVENT_LOG"] names something that cannot be imported or is not an event log."""


def backend_class(name: str) -> type[BaseEventLog]:
    """The backend class for an alias or a dotted path (InvalidEventLogBackend if none)."""
    path = BACKEND_ALIASES.get(name, name)
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise InvalidEventLogBackend(f"NEXUS_SSE['EVENT_LOG'] = {name!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseEventLog)):
        raise InvalidEventLogBackend(f"NEXUS_SSE['EVENT_LOG'] = {name!r} is not a BaseEventLog subclass")
    return cls


class EventLogManager:
    """Own the process's event log: build it from the settings, close it when they change."""

    def __init__(self) -> None:
        self._instance: BaseEventLog | None = None
        #: closes started on a running loop, kept until done (a task nobody holds may vanish)
        self._closing: set[asyncio.Task[None]] = set()
        setting_changed.connect(self._setting_changed, weak=False)

    def get(self) -> BaseEventLog:
        """The event log configured in NEXUS_SSE (built on first use)."""
        instance = self._instance
        if instance is None:
            cls = backend_class(conf.get("EVENT_LOG"))
            instance = self._instance = cls(**conf.get("EVENT_LOG_OPTIONS"))
        return instance

    def set(self, backend: BaseEventLog | None) -> BaseEventLog | None:
        """Use ``backend`` from now on (tests); return the one it replaces, not closed."""
        old, self._instance = self._instance, backend
        return old

    def reset(self) -> None:
        """Close the instance; the next :meth:`get` builds a new one from the settings.

        ``close()`` is a coroutine: on a running event loop it runs as a task (a settings
        change never blocks the loop; :meth:`wait_closed` waits for it), without one it runs
        to its end here."""
        old = self.set(None)
        if old is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._close(old))
            return
        task = loop.create_task(self._close(old), name="nexus_sse event log close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def wait_closed(self) -> None:
        """Wait for the closes :meth:`reset` started on this loop."""
        loop = asyncio.get_running_loop()
        mine = [task for task in self._closing if task.get_loop() is loop]
        if mine:
            await asyncio.wait(mine)

    @staticmethod
    async def _close(log: BaseEventLog) -> None:
        try:
            await log.close()
        except Exception:  # an old backend that cannot close must not break a settings change
            logger.exception("closing the event log %r failed", log)

    def _setting_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting == "NEXUS_SSE":
            self.reset()


#: the process-wide manager
event_logs = EventLogManager()


#: ``get_event_log()``: the process-wide event log configured in NEXUS_SSE (the bound method
#: itself, not a function around it: runs and streams call it on every start)
get_event_log = event_logs.get


def reset() -> None:
    """Close the instance (settings changed); the next call builds a new one."""
    event_logs.reset()
