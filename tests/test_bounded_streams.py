"""Bounded memory per run and per stream, in-process: the in-memory log's window, batched reads,
chunk sizes, the slow-reader rule, and runs whose early events only the archive still has."""

from __future__ import annotations

import pytest
from django.test import override_settings

from nexus_sse import sse
from nexus_sse.checks import check_settings
from nexus_sse.eventlog import get_event_log
from nexus_sse.eventlog.base import READ_BATCH
from nexus_sse.eventlog.memory import MemoryEventLog
from nexus_sse.follower import CHUNK_BYTES, HELD_SECONDS, _chunks, _too_slow
from nexus_sse.models import RunEvent

RUN = "3f2c9a4e-5b6d-41d1-9e2f-0a1b2c3d4e5f"


async def filled(count: int, maxlen: int = 3) -> MemoryEventLog:
    log = MemoryEventLog(MAXLEN=maxlen)
    for i in range(1, count + 1):
        await log.append(RUN, "token", {"i": i}, seq=i)
    return log


def seqs(events) -> list[int]:
    return [e.seq for e in events]


async def test_nothing_is_dropped_before_it_is_archived():
    log = await filled(10)
    assert seqs(await log.read_after(RUN, 0)) == list(range(1, 11))
    await log.archived(RUN, 2)  # only 1-2 archived: 3-10 must stay even though MAXLEN is 3
    assert seqs(await log.read_after(RUN, 0)) == list(range(3, 11))


async def test_archived_events_beyond_the_window_are_dropped_and_reads_start_at_the_window():
    log = await filled(10)
    await log.archived(RUN, 10)
    assert seqs(await log.read_after(RUN, 0)) == [8, 9, 10]  # the newest MAXLEN
    assert seqs(await log.wait_after(RUN, 2, timeout=0)) == [8, 9, 10]  # a gap: the caller asks the archive
    assert seqs(await log.wait_after(RUN, 8, timeout=0)) == [9, 10]
    assert (await log.last_event(RUN)).seq == 10
    assert (await log.append(RUN, "complete", {}, seq=11)).seq == 11  # seqs go on past dropped events
    with pytest.raises(RuntimeError, match="already ended"):
        await log.append(RUN, "token", {}, seq=12)


async def test_an_archive_ahead_of_the_log_keeps_the_window():
    log = await filled(5)
    await log.archived(RUN, 50)  # (the executor archives the terminal event before appending it)
    assert seqs(await log.read_after(RUN, 0)) == [3, 4, 5]
    await log.append(RUN, "token", {}, seq=6)
    assert seqs(await log.read_after(RUN, 0)) == [3, 4, 5, 6]  # trimmed at the next archive hook only


async def test_wait_after_returns_at_most_one_batch():
    log = await filled(READ_BATCH * 2 + 5, maxlen=10 * READ_BATCH)
    assert seqs(await log.wait_after(RUN, 0, timeout=0)) == list(range(1, READ_BATCH + 1))
    assert len(await log.wait_after(RUN, 2 * READ_BATCH, timeout=0)) == 5
    assert len(await log.read_after(RUN, 0)) == 2 * READ_BATCH + 5  # read_after: everything it holds


@pytest.mark.parametrize(
    "sizes",
    [
        [10] * 5,
        [CHUNK_BYTES],
        [CHUNK_BYTES + 1, 5],
        [40_000, 40_000, 40_000],
        [100] * 2000,
        [1, CHUNK_BYTES * 3, 1],
    ],
)
def test_chunks_are_at_most_chunk_bytes_unless_one_event_is_bigger(sizes):
    wires = [bytes([65 + i % 26]) * n for i, n in enumerate(sizes)]
    out = list(_chunks(wires))
    assert b"".join(out) == b"".join(wires)
    big = {w for w in wires if len(w) > CHUNK_BYTES}
    assert all(len(c) <= CHUNK_BYTES or c in big for c in out)
    assert len(out) <= 2 * sum(sizes) // CHUNK_BYTES + 1 + len(big)  # not one chunk per event


@pytest.mark.parametrize(
    ("behind", "lag", "held", "cut"),
    [
        (20_001, 0, 1.0, True),  # was caught up, the reader held us up, now far behind
        (20_001, 15_000, 1.0, True),  # further behind than at the last look
        (20_001, None, 1.0, False),  # first look of this stream (a resume far behind): a baseline
        (20_001, 25_000, 1.0, False),  # catching up
        (20_001, 0, 0.0, False),  # a burst the reader had no time to be slow for
        (9_000, 0, 1.0, False),  # within SLOW_READER_MAX_LAG
    ],
)
def test_a_reader_is_too_slow_only_when_far_behind_falling_further_and_holding_us_up(behind, lag, held, cut):
    assert _too_slow(behind, lag, held, 10_000) is cut
    assert HELD_SECONDS < 1.0


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (10_000, True),
        (1, True),
        (None, True),
        (0, False),
        (-5, False),
        (True, False),
        (2.5, False),
        ("100", False),
    ],
)
def test_slow_reader_max_lag_is_checked(value, ok):
    with override_settings(NEXUS_SSE={"SLOW_READER_MAX_LAG": value}):
        errors = [e for e in check_settings() if "SLOW_READER_MAX_LAG" in e.msg]
    assert not errors if ok else errors and errors[0].id == "nexus_sse.E003" and errors[0].hint


@pytest.mark.parametrize(
    ("options", "ok"),
    [
        ({}, True),
        ({"MAXLEN": 5}, True),
        ({"MAXLEN": 0}, False),
        ({"MAXLEN": "5"}, False),
        ({"MAXLEN": True}, False),
        ({"URL": "redis://x"}, False),
    ],
)
def test_memory_log_options_are_checked(options, ok):
    with override_settings(NEXUS_SSE={"EVENT_LOG_OPTIONS": options}):
        errors = [e for e in check_settings() if e.id == "nexus_sse.E008"]
    assert not errors if ok else errors and errors[0].hint


async def body_of(response) -> bytes:
    return b"".join([chunk async for chunk in response.streaming_content])


async def settled(run_id: str) -> None:
    """Wait for the run's executor to finish: a long run archives its last events after its stream
    ends, and a test database flushed meanwhile deadlocks on PostgreSQL."""
    from nexus_sse import runs

    executor = runs.local_executor(run_id)
    if executor is not None and executor.task is not None:
        await executor.task


WINDOW = {"EVENT_LOG_OPTIONS": {"MAXLEN": 50}, "ARCHIVE_BATCH_SIZE": 100}


@pytest.mark.django_db(transaction=True)
async def test_a_long_run_keeps_only_its_window_in_memory_and_replays_whole(async_client, workflows):
    with override_settings(NEXUS_SSE=WINDOW):
        response = await async_client.post(
            "/workflows/tokens/execute",
            {"inputs": {"count": 1500, "delay": 0}},
            content_type="application/json",
            headers={"Accept": "text/event-stream"},
        )
        original = await body_of(response)
        run_id = response["X-Run-Id"]
        await settled(run_id)
        kept = get_event_log()._runs[run_id]
        assert kept.base > 0 and len(kept.events) <= 50  # the rest is archived only
        # a reader behind the window (from the start, and from seq 7) gets the archived events, then the log's
        replay = await body_of(await async_client.get(f"/runs/{run_id}/events"))
        tail = await body_of(
            await async_client.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": f"{run_id}:7"})
        )
    rows = [(r.seq, r.event, r.data) async for r in RunEvent.objects.filter(run_id=run_id).order_by("seq")]
    assert len(rows) == 1504  # start, progress started, 1500 tokens, progress completed, complete
    assert parsed(original) == parsed(replay) == [(f"{run_id}:{s}", e, d) for s, e, d in rows]
    assert parsed(tail) == [(f"{run_id}:{s}", e, d) for s, e, d in rows[7:]]


def parsed(body: bytes) -> list[tuple]:
    return [(e.id, e.event, e.json()) for e in sse.parse(body) if e.data]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("maxlen", [10_000, 50])  # the backlog from the log, or mostly from the archive
async def test_a_backlog_goes_out_in_chunks_of_at_most_chunk_bytes(async_client, workflows, maxlen):
    with override_settings(NEXUS_SSE={"EVENT_LOG_OPTIONS": {"MAXLEN": maxlen}}):
        response = await async_client.post(
            "/workflows/bursts/execute",
            {"inputs": {"count": 2000, "pad": 300}},
            content_type="application/json",
            headers={"Accept": "text/event-stream"},
        )
        live = [chunk async for chunk in response.streaming_content]
        run_id = response["X-Run-Id"]
        await settled(run_id)
        replay = [
            chunk async for chunk in (await async_client.get(f"/runs/{run_id}/events")).streaming_content
        ]
    for chunks in (live, replay):
        assert sum(map(len, chunks)) > 10 * CHUNK_BYTES
        assert max(map(len, chunks)) <= CHUNK_BYTES
        assert len(chunks) < 40  # ... and not one per event either
    assert parsed(b"".join(live)) == parsed(b"".join(replay))


@pytest.mark.django_db(transaction=True)
async def test_a_run_far_ahead_of_its_archive_waits_for_it_and_loses_nothing(workflows, monkeypatch):
    """A node emitting in a tight loop while the database is held up: the run stops at the backlog
    bound (the log cannot let go of unarchived events), then goes on once the archive catches up."""
    import asyncio
    import threading

    from nexus_sse import executor as executor_module
    from nexus_sse import registry, runs, store
    from nexus_sse.models import Workflow

    gate = threading.Event()
    real = store.insert_events_of

    def held(*args, **kwargs):
        gate.wait(30)  # the database thread blocks here: "the database is slow"
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "insert_events_of", held)
    count = 5000
    with override_settings(NEXUS_SSE={"ARCHIVE_BATCH_SIZE": 100, "ARCHIVE_INTERVAL_SECONDS": 60.0}):
        workflow = await asyncio.to_thread(Workflow.objects.get, slug="tokens")
        run = await runs.start(
            workflow, registry.graph_for(workflow), {"count": count, "delay": 0}, mode="async"
        )
        executor = runs.local_executor(str(run.pk))
        bound = 100 * executor_module.ARCHIVE_BACKLOG_BATCHES
        seen, still = -1, 0
        for _ in range(20_000):  # event-loop turns, not time: a run that could go on would, each turn
            await asyncio.sleep(0)
            still = still + 1 if executor.seq == seen else 0
            seen = executor.seq
            if still >= 200:
                break
        assert still >= 200, "the run never stopped"
        # held at the bound: what is pending plus the one batch on the database thread
        assert bound <= executor.seq <= bound + 2 * 100 + 1
        gate.set()
        end = await asyncio.wait_for(runs.wait_for_end(str(run.pk)), 30)
        await asyncio.wait_for(executor.task, 30)  # (the last backlog is archived after the terminal event)
    assert end.event == "complete"
    stored = await asyncio.to_thread(
        lambda: list(RunEvent.objects.filter(run_id=run.pk).order_by("seq").values_list("seq", flat=True))
    )
    # start, progress, every token, progress, complete: in order, none lost
    assert stored == list(range(1, count + 5))
