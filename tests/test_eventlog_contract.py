"""What ``append`` promises, the same on every backend (BaseEventLog.append's docstring)."""

from __future__ import annotations

import uuid

import pytest

from nexus_sse.eventlog import SequenceConflict
from nexus_sse.eventlog.memory import MemoryEventLog
from nexus_sse.eventlog.redis import RedisEventLog
from nexus_sse.exceptions import EventLogUnavailable
from tests.redis_support import require_redis


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def log(request):
    if request.param == "memory":
        yield MemoryEventLog()
        return
    instance = RedisEventLog(URL=require_redis(), PREFIX=f"nexus_contract_{uuid.uuid4().hex[:8]}:")
    yield instance
    await instance.close()


async def test_a_seq_that_is_already_taken_is_a_sequence_conflict(log):
    run = str(uuid.uuid4())
    await log.append(run, "start", {}, seq=1)
    await log.append(run, "token", {"n": 1}, seq=2)
    for taken in (1, 2):
        with pytest.raises(SequenceConflict) as info:
            await log.append(run, "token", {"n": 2}, seq=taken)
        assert not isinstance(info.value, EventLogUnavailable)  # a caller's bug, not a 503
    assert [e.seq for e in await log.read_after(run, 0)] == [1, 2]


async def test_a_conflict_is_a_runtime_error_and_the_log_goes_on(log):
    run = str(uuid.uuid4())
    await log.append(run, "start", {}, seq=1)
    with pytest.raises(RuntimeError):
        await log.append(run, "token", {}, seq=1)
    assert (await log.append(run, "complete", {}, seq=2)).seq == 2
    assert (await log.last_event(run)).event == "complete"


async def test_without_a_seq_the_log_assigns_the_next_one(log):
    run = str(uuid.uuid4())
    assert [(await log.append(run, "token", {})).seq for _ in range(3)] == [1, 2, 3]


async def test_the_memory_log_also_refuses_a_gap_and_an_append_after_the_end():
    log = MemoryEventLog()
    await log.append("r", "start", {}, seq=1)
    with pytest.raises(SequenceConflict, match="expected seq 2"):
        await log.append("r", "token", {}, seq=3)
    await log.append("r", "complete", {}, seq=2)
    with pytest.raises(SequenceConflict, match="already ended"):
        await log.append("r", "token", {}, seq=3)
