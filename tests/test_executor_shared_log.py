"""A run's executor on a log whose append is a round trip (Redis): the events of concurrent nodes get
their seqs in order, and a cancellation in the middle of an append still ends the run properly."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from nexus_sse import registry, runs
from nexus_sse.eventlog import LogEvent, event_logs
from nexus_sse.eventlog.redis import RedisEventLog
from nexus_sse.models import RunEvent, Workflow
from tests.redis_support import require_redis

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


class LateReplyLog(RedisEventLog):
    """The real Redis log, except that the reply to the append of seq ``late_at`` never comes: Redis
    has taken the event, and the run is cancelled while its executor waits (a slow network)."""

    late_at: int | None = None

    def __init__(self, **options):
        super().__init__(**options)
        self.waiting = asyncio.Event()

    async def append(self, run_id: str, event: str, data: dict, seq: int | None = None) -> LogEvent:
        item = await super().append(run_id, event, data, seq=seq)
        if seq == self.late_at:
            self.waiting.set()
            await asyncio.Future()  # until cancelled
        return item


@pytest.fixture
async def shared_log():
    url = require_redis()
    log = LateReplyLog(URL=url, PREFIX=f"nexus_exec_{uuid.uuid4().hex[:8]}:", HEARTBEAT_SECONDS=1.0)
    before = event_logs.set(log)
    yield log
    event_logs.set(before)
    await log.close()


async def run_to_its_end(slug: str, inputs: dict, cancel_when=None) -> tuple[str, LogEvent]:
    workflow = await asyncio.to_thread(Workflow.objects.get, slug=slug)
    run = await runs.start(workflow, registry.graph_for(workflow), inputs, mode="async")
    executor = runs.local_executor(str(run.pk))
    assert executor is not None and executor.task is not None
    if cancel_when is not None:
        await asyncio.wait_for(cancel_when.wait(), 5)
        assert await runs.cancel(run) == "cancelling"
    end = await asyncio.wait_for(runs.wait_for_end(str(run.pk)), 10)
    await executor.task  # its last archive writes
    return str(run.pk), end


async def seqs_everywhere(log: RedisEventLog, run_id: str) -> tuple[list[int], list[int]]:
    logged = [e.seq for e in await log.read_after(run_id, 0)]
    archived = await asyncio.to_thread(
        lambda: list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
    )
    return logged, archived


async def test_concurrent_nodes_events_get_their_seqs_in_order(shared_log, workflows):
    # "steps": two nodes run at once (tokens and sleep), then a third; both announce their start together
    run_id, end = await run_to_its_end("steps", {"count": 5, "delay": 0.0, "seconds": 0.05})
    assert end.event == "complete", end.data
    logged, archived = await seqs_everywhere(shared_log, run_id)
    assert logged == archived == list(range(1, end.seq + 1))


async def test_a_cancel_during_an_append_ends_the_run_after_the_event_that_landed(shared_log, workflows):
    shared_log.late_at = 5  # start, progress, then tokens: the third token lands, its reply is late
    run_id, end = await run_to_its_end("tokens", {"count": 100, "delay": 0.0}, cancel_when=shared_log.waiting)
    assert (end.event, end.data["error_type"], end.seq) == ("error", "CancelledError", 6)
    logged, archived = await seqs_everywhere(shared_log, run_id)
    assert logged == archived == [1, 2, 3, 4, 5, 6]  # the landed token is archived too
