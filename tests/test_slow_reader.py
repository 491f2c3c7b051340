"""Slow readers over real sockets: uvicorn applies backpressure, so a reader that stops reading a long
run is ended with ``retry:`` + ``:slow reader`` and resumes exactly where it was (from the archive,
behind the in-memory window); daphne never makes us wait, so there the reader is never cut off."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from nexus_sse import sse
from nexus_sse.client import NexusClient
from nexus_sse.models import RunEvent
from tests.live import ServerProcess
from tests.sse_helpers import ACCEPT_SSE, run_status, take, wait_for

TOKEN = {"Authorization": "Bearer m"}
OVERRIDES = {
    "SLOW_READER_MAX_LAG": 1000,
    "EVENT_LOG_OPTIONS": {"MAXLEN": 500},
    "RETRY_MILLISECONDS": 100,
    "METRICS_ENABLED": True,
    "METRICS_TOKEN": "m",
    "ORPHAN_SECONDS": 60.0,
}
# ~11 MB of events in ~0.5 s or more: far more than the socket buffers hold, and slowly enough that
# the stream keeps up until the reader stops (a stream the run outpaces from the start never lags *further*)
LONG = {"inputs": {"count": 20_000, "pad": 400, "burst": 200, "pause": 0.005}}
CUT = b"retry: 100\n\n:slow reader; reconnect with Last-Event-ID\n\n"
#: a fixed receive buffer (Linux would grow it to tcp_rmem's max, 32 MB here, holding the whole run);
#: not much smaller, or delayed ACKs make every window cost 40 ms
SMALL_RCVBUF = [(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)]


@pytest.fixture(scope="module")
def uvicorn(django_db_setup):
    with ServerProcess("uvicorn", overrides=OVERRIDES) as proc:
        yield proc


@pytest.fixture(scope="module")
def daphne(django_db_setup):
    with ServerProcess("daphne", overrides=OVERRIDES) as proc:
        yield proc


@pytest.fixture
def on_uvicorn(uvicorn, workflows):
    with httpx.Client(base_url=uvicorn.url, timeout=30) as c:
        yield c


@pytest.fixture
def on_daphne(daphne, workflows):
    with httpx.Client(base_url=daphne.url, timeout=30) as c:
        yield c


def counter(client: httpx.Client, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", client.get("/metrics", headers=TOKEN).text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def archived(run_id: str, total: int = LONG["inputs"]["count"] + 4) -> list[tuple]:
    """The run's archived events, once all are there: a long run's end is recorded before its last
    batches are archived (they follow in the background), so "completed" comes first."""
    events = RunEvent.objects.filter(run_id=run_id)
    wait_for(lambda: events.count() >= total, timeout=60)
    return [(f"{run_id}:{r.seq}", r.event, r.data) for r in events.order_by("seq")]


def read_with_a_stall(client: httpx.Client) -> tuple[str, bytes]:
    """Start a long run, read its first event, stop reading until the run has ended, then read the rest."""
    transport = httpx.HTTPTransport(socket_options=SMALL_RCVBUF)
    with (
        httpx.Client(base_url=client.base_url, transport=transport, timeout=60) as slow,
        slow.stream("POST", "/workflows/bursts/execute", json=LONG, headers=ACCEPT_SSE) as response,
    ):
        run_id = response.headers["x-run-id"]
        pieces = response.iter_raw(4096)
        body = b""
        while b"event: start" not in body:
            body += next(pieces)
        # The reader stalls; the run goes on without it (far more than SLOW_READER_MAX_LAG ahead).
        wait_for(lambda: run_status(client, run_id)["status"] == "completed", timeout=90)
        body += b"".join(pieces)
    return run_id, body


def test_uvicorn_cuts_off_a_stalled_reader_which_resumes_with_exactly_the_rest(on_uvicorn):
    client = on_uvicorn
    cut_before = counter(client, "nexus_sse_slow_readers_total")
    from_archive_before = counter(client, "nexus_sse_events_from_archive_total")
    run_id, body = read_with_a_stall(client)
    assert body.endswith(CUT)  # retry first, then the comment, then the end of the response
    seen = [(e.id, e.event, e.json()) for e in sse.parse(body) if e.data]
    every = archived(run_id)
    assert len(every) == 20_004 and every[-1][1] == "complete"
    assert 1 <= len(seen) < len(every) - 1000 and seen == every[: len(seen)]  # no gap, no terminal event
    # Resume with the last id: exactly the rest, the older part from the archive (behind MAXLEN = 500).
    rest = [
        (e.id, e.event, e.json())
        for e in take(client, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": seen[-1][0]})
    ]
    assert seen + rest == every
    assert counter(client, "nexus_sse_slow_readers_total") == cut_before + 1
    assert (
        counter(client, "nexus_sse_events_from_archive_total")
        >= from_archive_before + len(every) - len(seen) - 500
    )


def test_daphne_never_cuts_off_a_stalled_reader_it_buffers_the_stream_instead(on_daphne):
    client = on_daphne  # its send never waits for the reader: our stream never sees it lag
    cut_before = counter(client, "nexus_sse_slow_readers_total")
    run_id, body = read_with_a_stall(client)
    assert CUT not in body
    assert [(e.id, e.event, e.json()) for e in sse.parse(body) if e.data] == archived(run_id)
    assert counter(client, "nexus_sse_slow_readers_total") == cut_before


def test_the_python_client_resumes_after_a_slow_reader_cut_off_without_loss_or_duplicates(on_uvicorn):
    client = on_uvicorn
    cut_before = counter(client, "nexus_sse_slow_readers_total")
    reconnects = []
    http = httpx.Client(transport=httpx.HTTPTransport(socket_options=SMALL_RCVBUF), timeout=60)
    with NexusClient(
        str(client.base_url), http=http, on_reconnect=lambda attempt, delay: reconnects.append(delay)
    ) as nexus:
        events = []
        for event in nexus.stream("bursts", LONG["inputs"]):
            events.append(event)
            if len(events) == 1:  # stop reading until the run is over, far ahead of us
                wait_for(
                    lambda run_id=event.run_id: run_status(client, run_id)["status"] == "completed",
                    timeout=90,
                )
    run_id = events[0].run_id
    assert [(e.id, e.event, e.data) for e in events] == archived(run_id)
    assert len(reconnects) >= 1 and counter(client, "nexus_sse_slow_readers_total") >= cut_before + 1


@pytest.mark.redis
def test_a_reader_behind_redis_maxlen_gets_the_trimmed_events_from_the_archive_page_by_page(workflows):
    from tests.redis_support import redis_overrides, require_redis

    require_redis()
    overrides = redis_overrides(METRICS_ENABLED=True, METRICS_TOKEN="m")
    overrides["EVENT_LOG_OPTIONS"]["MAXLEN"] = 100  # (approximate: Redis trims whole nodes of 100)
    with (
        ServerProcess("uvicorn", overrides=overrides) as server,
        httpx.Client(base_url=server.url, timeout=30) as c,
    ):
        first = take(
            c,
            "POST",
            "/workflows/bursts/execute",
            limit=3,
            json={"inputs": {"count": 3000}},
            headers=ACCEPT_SSE,
        )
        run_id = first[0].json()["run_id"]
        wait_for(lambda: run_status(c, run_id)["status"] == "completed", timeout=60)
        rest = take(c, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": first[-1].id})
        from_archive = counter(c, "nexus_sse_events_from_archive_total")
    every = archived(run_id, total=3004)
    assert [(e.id, e.event, e.json()) for e in first + rest] == every
    assert from_archive >= 3004 - 3 - 300 and from_archive > 2 * 1000  # several pages
