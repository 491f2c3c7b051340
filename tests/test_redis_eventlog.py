"""The Redis Streams event log itself, against a real Redis."""

import asyncio
import uuid

import pytest
from django.test import override_settings

from nexus_sse.checks import check_settings
from nexus_sse.eventlog.redis import RedisEventLog
from tests.redis_support import require_redis

pytestmark = pytest.mark.redis


@pytest.fixture
async def log():
    url = require_redis()
    instance = RedisEventLog(URL=url, PREFIX=f"nexus_unit_{uuid.uuid4().hex[:8]}:", HEARTBEAT_SECONDS=1.0)
    yield instance
    await instance.close()


def parked(log: RedisEventLog, run: str) -> bool:
    """Whether a wait_after waits on the run's shared reader in this loop."""
    tail = log._tails.get(asyncio.get_running_loop(), {}).get(run)
    return bool(tail is not None and tail.waiters)


async def until(condition) -> None:
    """Yield to the loop until ``condition()`` holds (within 5 s: a deadline, not a guess)."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110  (no event tells that a waiter parked)
            await asyncio.sleep(0)


async def test_append_read_and_follow(log):
    run = str(uuid.uuid4())
    assert await log.last_event(run) is None
    for seq, name in enumerate(["start", "progress", "token"], 1):
        event = await log.append(run, name, {"n": seq}, seq=seq)
        assert event.seq == seq
    assert [e.seq for e in await log.read_after(run, 1)] == [2, 3]
    assert (await log.last_event(run)).event == "token"
    waiter = asyncio.ensure_future(log.wait_after(run, 3, timeout=5))
    await until(lambda: parked(log, run))  # the waiter waits on the run's shared reader
    await log.append(run, "complete", {"result": 1}, seq=4)
    got = await asyncio.wait_for(waiter, 5)
    assert [(e.seq, e.event, e.data) for e in got] == [(4, "complete", {"result": 1})]
    assert got[0].wire.startswith(f"id: {run}:4\nevent: complete\n".encode())
    assert await log.wait_after(run, 4, timeout=0.05) == []  # times out with nothing


async def test_subscribers_liveness_and_cancel_flags(log):
    run = str(uuid.uuid4())
    await log.add_subscriber(run)
    await log.add_subscriber(run)
    assert await log.subscriber_count(run) == 2
    await log.remove_subscriber(run)
    assert await log.subscriber_count(run) == 1
    assert await log.executor_alive("some-dead-process:1:x") is False
    assert not await log.cancel_requested(run)
    assert await log.request_cancel(run) and await log.cancel_requested(run)
    await log.finished(run)
    assert not await log.cancel_requested(run)


def test_checks_refuse_unknown_redis_options():
    with override_settings(NEXUS_SSE={"EVENT_LOG": "redis", "EVENT_LOG_OPTIONS": {"URI": "x"}}):
        assert "nexus_sse.E008" in {e.id for e in check_settings()}
    with override_settings(NEXUS_SSE={"EVENT_LOG": "redis", "EVENT_LOG_OPTIONS": {"URL": "redis://x"}}):
        assert not {e.id for e in check_settings()} & {"nexus_sse.E004", "nexus_sse.E008"}


async def test_a_wait_longer_than_the_socket_timeout_still_returns_the_event(log):
    # redis-py's default socket timeout is 5 s; a quiet stream must be able to wait longer than that
    run = str(uuid.uuid4())
    await log.append(run, "start", {}, seq=1)
    waiter = asyncio.ensure_future(log.wait_after(run, 1, timeout=20))
    done, _ = await asyncio.wait({waiter}, timeout=6.5)
    assert not done  # still waiting past 5 s, without an error
    await log.append(run, "complete", {}, seq=2)
    got = await asyncio.wait_for(waiter, 5)
    assert [e.event for e in got] == ["complete"]


async def test_an_unreachable_redis_is_one_clear_error_naming_the_server_not_its_password():
    from nexus_sse.exceptions import EventLogUnavailable

    log = RedisEventLog(URL="redis://app:s3cret@127.0.0.1:1/0")  # nothing listens on port 1
    run = str(uuid.uuid4())
    calls = [
        log.append(run, "start", {}, seq=1),
        log.read_after(run, 0),
        log.wait_after(run, 0, 1.0),
        log.last_event(run),
        log.add_subscriber(run),
        log.subscriber_count(run),
        log.executor_alive("elsewhere"),
        log.request_cancel(run),
        log.cancel_requested(run),
        log.finished(run),
        log.ping(),
        log.announce(),
    ]
    try:
        for call in calls:
            with pytest.raises(EventLogUnavailable) as info:
                await call
            assert "127.0.0.1:1" in info.value.message and "s3cret" not in info.value.message
            assert info.value.error_type == "InternalError" and info.value.status == 503
    finally:
        await log.close()


async def follow(log, run: str, after: int = 0) -> list[int]:
    """Every seq after ``after`` to the terminal event, as a run stream reads them."""
    seqs: list[int] = []
    while True:
        events = await log.wait_after(run, seqs[-1] if seqs else after, timeout=5)
        assert events, "the run went quiet before its end"
        seqs += [e.seq for e in events]
        if events[-1].terminal:
            return seqs


async def test_streams_of_one_run_share_one_blocking_read(log, monkeypatch):
    run = str(uuid.uuid4())
    await log.append(run, "start", {}, seq=1)
    reads: list[dict] = []
    client = log._redis()
    real = client.xread

    async def counted(streams, *args, **kwargs):
        reads.append(streams)
        return await real(streams, *args, **kwargs)

    monkeypatch.setattr(client, "xread", counted)  # every XREAD this process sends
    streams = [asyncio.ensure_future(follow(log, run)) for _ in range(20)]
    behind = asyncio.ensure_future(
        follow(log, run, after=0)
    )  # (all start behind the tail: they read directly)
    for seq in range(2, 52):
        await asyncio.sleep(0.001)  # a token every millisecond, so readers catch up between them
        await log.append(run, "token", {"n": seq}, seq=seq)
    await log.append(run, "complete", {}, seq=52)
    results = await asyncio.wait_for(asyncio.gather(*streams, behind), 10)
    assert all(seqs == list(range(1, 53)) for seqs in results)
    # one blocking read per wake-up of the run's reader, not one per stream: 21 streams had taken 21x
    assert len(reads) <= 52, reads
    assert not log._tails[asyncio.get_running_loop()]  # it stopped at the run's end


async def test_a_stream_far_behind_the_shared_reader_reads_directly(log):
    run = str(uuid.uuid4())
    for seq in range(1, 2501):
        await log.append(run, "token", {"n": seq}, seq=seq)
    live = asyncio.ensure_future(log.wait_after(run, 2500, timeout=5))  # starts the shared reader
    await until(lambda: parked(log, run))
    await log.append(run, "complete", {}, seq=2501)
    assert [e.seq for e in await asyncio.wait_for(live, 5)] == [2501]
    assert await follow(log, run, after=3) == list(range(4, 2502))  # pages of READ_BATCH from Redis
