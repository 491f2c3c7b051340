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


async def test_append_read_and_follow(log):
    run = str(uuid.uuid4())
    assert await log.last_event(run) is None and not await log.exists(run)
    for seq, name in enumerate(["start", "progress", "token"], 1):
        event = await log.append(run, name, {"n": seq}, seq=seq)
        assert event.seq == seq
    assert [e.seq for e in await log.read_after(run, 1)] == [2, 3]
    assert (await log.last_event(run)).event == "token" and await log.exists(run)
    waiter = asyncio.ensure_future(log.wait_after(run, 3, timeout=5))
    await asyncio.sleep(0)  # let the XREAD block
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
    calls = [log.append(run, "start", {}, seq=1), log.read_after(run, 0), log.wait_after(run, 0, 1.0),
             log.last_event(run), log.exists(run), log.add_subscriber(run), log.subscriber_count(run),
             log.executor_alive("elsewhere"), log.request_cancel(run), log.cancel_requested(run),
             log.finished(run), log.ping(), log.announce()]
    try:
        for call in calls:
            with pytest.raises(EventLogUnavailable) as info:
                await call
            assert "127.0.0.1:1" in info.value.message and "s3cret" not in info.value.message
            assert info.value.error_type == "InternalError" and info.value.status == 503
    finally:
        await log.close()
