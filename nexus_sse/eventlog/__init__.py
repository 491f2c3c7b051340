"""The per-run event log, behind one interface, with a process-wide backend instance.

Instances are process-wide (not per async context like Django's connection handlers), so every
request of a process sees the same in-memory log.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from nexus_sse import conf
from nexus_sse.eventlog.base import TERMINAL_EVENTS, BaseEventLog, LogEvent

__all__ = ["BACKEND_ALIASES", "TERMINAL_EVENTS", "BaseEventLog", "LogEvent", "get_event_log", "reset"]

BACKEND_ALIASES = {
    "memory": "nexus_sse.eventlog.memory.MemoryEventLog",
    "redis": "nexus_sse.eventlog.redis.RedisEventLog",
}

_instance: BaseEventLog | None = None


class InvalidEventLogBackend(ImproperlyConfigured):
    """NEXUS_SSE["EVENT_LOG"] names something that cannot be imported or is not an event log."""


def backend_class(name: str) -> type[BaseEventLog]:
    path = BACKEND_ALIASES.get(name, name)
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise InvalidEventLogBackend(f"NEXUS_SSE['EVENT_LOG'] = {name!r} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, BaseEventLog)):
        raise InvalidEventLogBackend(f"NEXUS_SSE['EVENT_LOG'] = {name!r} is not a BaseEventLog subclass")
    return cls


def get_event_log() -> BaseEventLog:
    """The process-wide event log configured in NEXUS_SSE."""
    global _instance
    if _instance is None:
        _instance = backend_class(conf.get("EVENT_LOG"))(**conf.get("EVENT_LOG_OPTIONS"))
    return _instance


def reset() -> None:
    """Drop the instance (settings changed); the next call builds a new one."""
    global _instance
    _instance = None
