"""The process's event log is built from the settings and closed when they change."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from django.test import override_settings

from nexus_sse.eventlog import event_logs, get_event_log, reset
from nexus_sse.eventlog.memory import MemoryEventLog
from tests.redis_support import redis_overrides, require_redis

RECORDING = {"EVENT_LOG": "tests.test_eventlog_manager.RecordingLog"}


class RecordingLog(MemoryEventLog):
    """An in-memory log that counts its closes (a close takes a loop turn, like a real one)."""

    def __init__(self, **options):
        super().__init__(**options)
        self.closes = 0

    async def close(self) -> None:
        await asyncio.sleep(0)
        self.closes += 1


class FailingLog(MemoryEventLog):
    async def close(self) -> None:
        raise OSError("the server went away")


def test_without_a_running_loop_a_settings_change_closes_the_old_backend_at_once():
    with override_settings(NEXUS_SSE=RECORDING):
        first = get_event_log()
        assert isinstance(first, RecordingLog) and get_event_log() is first
        with override_settings(NEXUS_SSE={**RECORDING, "EVENT_LOG_OPTIONS": {"MAXLEN": 5}}):
            assert first.closes == 1
            second = get_event_log()
            assert second is not first and second.maxlen == 5
        assert second.closes == 1
        third = get_event_log()
    assert third.closes == 1 and first.closes == 1
    assert not isinstance(get_event_log(), RecordingLog)


async def test_on_a_running_loop_the_close_runs_as_a_task_without_blocking_the_change():
    with override_settings(NEXUS_SSE=RECORDING):
        old = get_event_log()
    assert old.closes == 0  # the loop has not run the close yet: the change did not wait for it
    assert get_event_log() is not old
    await event_logs.wait_closed()
    assert old.closes == 1


async def test_a_backend_that_fails_to_close_is_logged_and_replaced(caplog):
    with override_settings(NEXUS_SSE={"EVENT_LOG": "tests.test_eventlog_manager.FailingLog"}):
        old = get_event_log()
    with caplog.at_level(logging.ERROR, logger="nexus_sse.eventlog"):
        await event_logs.wait_closed()
    assert "the server went away" in caplog.text
    assert get_event_log() is not old


def test_set_swaps_in_a_backend_and_hands_back_the_old_one_unclosed():
    mine = RecordingLog()
    before = get_event_log()
    assert event_logs.set(mine) is before
    try:
        assert get_event_log() is mine
    finally:
        assert event_logs.set(before) is mine
    assert mine.closes == 0 and get_event_log() is before


def test_reset_closes_the_instance_and_the_next_call_builds_another():
    mine = RecordingLog()
    before = event_logs.set(mine)
    reset()
    assert mine.closes == 1
    assert get_event_log() is not mine and get_event_log() is not before


async def client_names(name: str) -> int:
    """How many connections Redis has from clients named ``name``."""
    import redis.asyncio as aioredis

    admin = aioredis.Redis.from_url(require_redis())
    try:
        return sum(1 for c in await admin.client_list() if c.get("name") == name)
    finally:
        await admin.aclose()


@pytest.mark.redis
async def test_a_settings_change_closes_the_old_redis_clients_and_heartbeat():
    name = f"nexus_manager_{uuid.uuid4().hex[:8]}"
    overrides = redis_overrides()
    overrides["EVENT_LOG_OPTIONS"]["URL"] = f"{require_redis()}?client_name={name}"
    with override_settings(NEXUS_SSE=overrides):
        log = get_event_log()
        await log.announce()  # starts this loop's client and heartbeat
        await log.ping()
        heartbeat = log._heartbeats[asyncio.get_running_loop()]
        assert await client_names(name) >= 1
    await event_logs.wait_closed()
    assert heartbeat.done() and not log._clients
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while await client_names(name):  # the server sees each socket close a moment later
        assert loop.time() < deadline, "the old backend's connections are still open"
