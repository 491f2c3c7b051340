"""Resuming a run's stream after a cursor (Last-Event-ID): where the events come from, if anywhere.

One decision for both views that resume (execute with Last-Event-ID, and runs/<id>/events):
- the event log still holds the run (or it is not written anywhere yet): stream from the log;
- only the database archive holds it: stream from the archive, starting with a first page;
- the run finished and the cursor is at its end: nothing to send (204);
- the cursor is past the run's last event: a ValidationError.
A run whose executor died is marked interrupted first, so its stream ends.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from nexus_sse import runs, store
from nexus_sse.enums import EventType
from nexus_sse.eventlog import LogEvent, get_event_log
from nexus_sse.exceptions import ValidationError
from nexus_sse.models import Run


class Source(enum.Enum):
    """Where a resumed stream reads its events."""

    LOG = "log"
    ARCHIVE = "archive"
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class Resume:
    """How to resume: the source and, from the archive, its first page of events."""

    source: Source
    first: list[LogEvent] = field(default_factory=list)


FROM_LOG = Resume(Source.LOG)
NOTHING = Resume(Source.NOTHING)


def is_interrupted(event: LogEvent) -> bool:
    """Whether ``event`` is the error event that ends a run whose executor died."""
    return event.event == EventType.ERROR and event.data.get("interrupted") is True


async def resume(run: Run, after: int) -> Resume:
    """Decide how to send ``run``'s events after seq ``after``."""
    run_id = str(run.pk)
    log = get_event_log()
    last = await log.last_event(run_id)
    if not run.finished and run.executor and not await log.executor_alive(run.executor):
        await runs.mark_interrupted(run)
        last = await log.last_event(run_id)
    elif last is None and not run.finished:
        return FROM_LOG  # unfinished, its executor alive: follow it live
    if last is not None:
        if after > last.seq:
            raise ValidationError(
                f"Last-Event-ID is ahead of the run (last seq {last.seq})", path="Last-Event-ID"
            )
        return NOTHING if last.terminal and after >= last.seq else FROM_LOG
    return await _from_archive(run_id, after)


async def _from_archive(run_id: str, after: int) -> Resume:
    events = await store.read_events(run_id, after)
    if events:
        return Resume(Source.ARCHIVE, events)
    last = await store.last_archived(run_id)
    if last is None or after == last.seq:
        return NOTHING
    if after < last.seq or not is_interrupted(last):
        raise ValidationError("Last-Event-ID is ahead of the run", path="Last-Event-ID")
    # The client saw events that died with their process before being archived: it has not seen
    # how the run ended, so send the terminal event rather than leave it waiting.
    return Resume(Source.ARCHIVE, [last])
