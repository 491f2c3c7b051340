"""Runs outlive connections (uvicorn and daphne): resume without loss or re-run, keepalives,
orphan cancellation, explicit cancel, failures ending streams, replay from the archive."""

import time

import httpx
import pytest

from nexus_sse.models import Run, RunEvent
from tests.live import ServerProcess
from tests.sse_helpers import ACCEPT_SSE, raw_stream, run_status, take, wait_for

OVERRIDES = {"KEEPALIVE_SECONDS": 0.2, "ORPHAN_SECONDS": 0.6}
TOKENS = {"inputs": {"count": 25, "delay": 0.01}}


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def server(request, django_db_setup):
    with ServerProcess(request.param, overrides=OVERRIDES) as proc:
        yield proc


@pytest.fixture
def client(server, workflows):
    with httpx.Client(base_url=server.url, timeout=15) as c:
        yield c


def contiguous(events, run_id):
    return [e.id for e in events] == [f"{run_id}:{i}" for i in range(1, len(events) + 1)]


@pytest.mark.parametrize("k", [1, 2, 7, 20])
@pytest.mark.parametrize("how", ["header-on-post", "query-on-get", "runs-events"])
def test_resume_after_the_kth_event_gets_exactly_the_rest_and_never_reruns(client, k, how):
    first = take(client, "POST", "/workflows/tokens/execute", limit=k, json=TOKENS, headers=ACCEPT_SSE)
    run_id, last_id = first[0].json()["run_id"], first[-1].id
    if how == "header-on-post":
        rest = take(
            client, "POST", "/workflows/tokens/execute", headers={**ACCEPT_SSE, "Last-Event-ID": last_id}
        )
    elif how == "query-on-get":
        rest = take(client, "GET", "/workflows/tokens/execute", params={"lastEventId": last_id})
    else:
        rest = take(client, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": last_id})
    events = first + rest
    assert len(first) == k and contiguous(events, run_id)
    assert [e.event for e in events].count("start") == 1 and events[-1].event == "complete"
    assert (
        "".join(e.json()["delta"] for e in events if e.event == "token")
        == events[-1].json()["result"]["text"]
    )
    assert Run.objects.filter(workflow__slug="tokens").count() == 1  # ran once


def test_resume_of_a_finished_run_replays_the_same_bytes_and_then_204(client):
    response, original = raw_stream(
        client, "POST", "/workflows/tokens/execute", json=TOKENS, headers=ACCEPT_SSE
    )
    run_id = response.headers["x-run-id"]
    resumed, replay = raw_stream(
        client, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": f"{run_id}:3"}
    )
    assert resumed.status_code == 200
    cut = original.index(f"id: {run_id}:4\n".encode())
    assert replay == b"retry: 3000\n\n" + original[cut:]
    last_seq = RunEvent.objects.filter(run_id=run_id).count()
    done = client.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": f"{run_id}:{last_seq}"})
    assert done.status_code == 204 and done.content == b""


def test_a_finished_run_replays_from_the_database_on_a_process_that_never_held_it(server, client):
    response, original = raw_stream(
        client, "POST", "/workflows/tokens/execute", json=TOKENS, headers=ACCEPT_SSE
    )
    run_id = response.headers["x-run-id"]
    with (
        ServerProcess(server.kind, overrides=OVERRIDES) as other,  # its in-memory log is empty
        httpx.Client(base_url=other.url, timeout=15) as c,
    ):
        _, replay = raw_stream(c, "GET", f"/runs/{run_id}/events")
        _, tail = raw_stream(c, "GET", f"/workflows/tokens/execute?lastEventId={run_id}:10")
    # the same events: ids, names, data (PostgreSQL's jsonb may order a payload's keys differently)
    assert same_events(replay, original)
    assert same_events(tail, b"retry: 3000\n\n" + original[original.index(f"id: {run_id}:11\n".encode()) :])


def same_events(a: bytes, b: bytes) -> bool:
    from nexus_sse import sse

    def parsed(body):
        return [(e.event, e.id, e.retry, e.json() if e.data else None) for e in sse.parse(body)]

    return parsed(a) == parsed(b)


def test_keepalives_arrive_while_a_slow_node_runs(client):
    lines = []
    with client.stream("GET", "/workflows/slow/execute?seconds=1.2") as response:
        for line in response.iter_lines():
            lines.append(line)
    start, end = lines.index("event: start"), lines.index("event: complete")
    assert lines[start:end].count(":keepalive") >= 3


def test_a_client_disconnect_cleans_up_so_an_unwatched_run_is_cancelled(client):
    first = take(client, "GET", "/workflows/slow/execute?seconds=30", limit=1)
    run_id = first[0].json()["run_id"]
    status = wait_for(lambda: (s := run_status(client, run_id))["status"] != "running" and s)
    assert status["status"] == "cancelled" and status["error_type"] == "CancelledError"
    replay = take(client, "GET", f"/runs/{run_id}/events")
    assert replay[-1].event == "error" and replay[-1].json()["error_type"] == "CancelledError"


def test_a_watched_run_is_not_cancelled_and_an_async_run_needs_no_watcher(client):
    started = client.post(
        "/workflows/slow/execute", json={"inputs": {"seconds": 1.5}, "mode": "async"}
    ).json()
    watched = take(client, "GET", "/workflows/slow/execute?seconds=1.5")
    assert watched[-1].event == "complete"  # 1.5 s > ORPHAN_SECONDS, but someone was listening
    status = wait_for(lambda: (s := run_status(client, started["run_id"]))["status"] != "running" and s)
    assert status["status"] == "completed"


@pytest.mark.parametrize("workflow", ["slow", "blocking"])
def test_cancel_stops_a_running_run_and_ends_its_stream(client, workflow):
    began = time.monotonic()
    with httpx.Client(base_url=client.base_url, timeout=15) as other:
        events = []
        from httpx_sse import connect_sse

        with connect_sse(client, "GET", f"/workflows/{workflow}/execute?seconds=4") as source:
            for event in source.iter_sse():
                if not event.data:
                    continue
                events.append(event)
                if event.event == "progress":  # the node has started: cancel it
                    cancel = other.post(f"/runs/{event.json()['run_id']}/cancel")
                    assert cancel.status_code == 202 and cancel.json()["status"] == "cancelling"
    assert time.monotonic() - began < 3.5
    assert events[-1].event == "error" and events[-1].json()["error_type"] == "CancelledError"
    run_id = events[0].json()["run_id"]
    assert run_status(client, run_id)["status"] == "cancelled"
    again = client.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
