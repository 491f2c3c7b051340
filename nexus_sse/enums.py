"""The vocabulary of runs and of the wire: event types, run modes, run statuses.

Members are ``str``s: they compare equal to the plain strings and encode (JSON, SSE) as them.
"""

from __future__ import annotations

from enum import StrEnum

from django.db.models import TextChoices


class EventType(StrEnum):
    """The ``event:`` of a run's events."""

    START = "start"
    PROGRESS = "progress"
    TOKEN = "token"
    COMPLETE = "complete"
    ERROR = "error"


#: the events that end a run (exactly one of them, last). Plain strs: a set lookup of the event
#: names nodes emit (exact strs) then takes the fast path, once per event.
TERMINAL_EVENTS = frozenset({EventType.COMPLETE.value, EventType.ERROR.value})


class RunMode(TextChoices):
    """How the execute request gets its run: the result when it ends, the run id at once, or a stream."""

    SYNC = "sync"
    ASYNC = "async"
    STREAM = "stream"


class RunStatus(TextChoices):
    """Where a run is in its life (``Run.Status``)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
