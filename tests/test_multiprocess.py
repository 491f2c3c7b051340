"""Two server processes sharing Redis and one database: any process serves any run."""

import itertools
import random
import threading
import time

import httpx
import pytest
from httpx_sse import connect_sse

from nexus_sse.models import Run, RunEvent
from tests.live import ServerProcess
from tests.redis_support import URL, redis_overrides, require_redis
from tests.sse_helpers import ACCEPT_SSE, run_status, take, wait_for

pytestmark = pytest.mark.redis
TOKENS = {"inputs": {"count": 30, "delay": 0.01}}


@pytest.fixture(scope="module")
def pair(django_db_setup):
    require_redis()
    overrides = redis_overrides(KEEPALIVE_SECONDS=0.3, ORPHAN_SECONDS=1.0, WORKFLOW_CACHE_SECONDS=0.0)
    with (
        ServerProcess("uvicorn", overrides=overrides) as a,
        ServerProcess("daphne", overrides=overrides) as b,
    ):
        yield a, b


@pytest.fixture
def clients(pair, workflows):
    a, b = pair
    with httpx.Client(base_url=a.url, timeout=15) as ca, httpx.Client(base_url=b.url, timeout=15) as cb:
        yield ca, cb


def test_resume_on_the_other_process_gets_exactly_the_rest(clients):
    a, b = clients
    first = take(a, "POST", "/workflows/tokens/execute", limit=5, json=TOKENS, headers=ACCEPT_SSE)
    rest = take(
        b, "GET", f"/runs/{first[0].json()['run_id']}/events", headers={"Last-Event-ID": first[-1].id}
    )
    events = first + rest
    run_id = first[0].json()["run_id"]
    assert [e.id for e in events] == [f"{run_id}:{i}" for i in range(1, len(events) + 1)]
    assert events[-1].event == "complete" and Run.objects.filter(workflow__slug="tokens").count() == 1


def test_a_run_streamed_from_b_cut_off_and_resumed_on_a(clients):
    a, b = clients
    started = a.post("/workflows/tokens/execute", json={**TOKENS, "mode": "async"}).json()
    run_id = started["run_id"]
    middle = take(b, "GET", f"/runs/{run_id}/events", limit=8)
    rest = take(a, "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": middle[-1].id})
    events = middle + rest
    assert [e.id for e in events] == [f"{run_id}:{i}" for i in range(1, len(events) + 1)]
    archived = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "event"))
    assert [(int(e.id.split(":")[1]), e.event) for e in events] == archived


def test_cancel_from_the_other_process(clients):
    a, b = clients
    began = time.monotonic()
    events = []
    with connect_sse(a, "GET", "/workflows/slow/execute?seconds=20") as source:
        for event in source.iter_sse():
            if not event.data:
                continue
            events.append(event)
            if event.event == "start":
                response = b.post(f"/runs/{event.json()['run_id']}/cancel")
                assert response.status_code == 202 and response.json()["status"] == "cancelling"
    assert events[-1].event == "error" and events[-1].json()["error_type"] == "CancelledError"
    assert time.monotonic() - began < 8
    assert run_status(b, events[0].json()["run_id"])["status"] == "cancelled"


def test_a_run_watched_from_the_other_process_is_not_an_orphan(clients):
    a, b = clients
    with connect_sse(a, "GET", "/workflows/slow/execute?seconds=2.5") as source:
        for event in source.iter_sse():
            if event.data:
                run_id = event.json()["run_id"]
                break
    # A's stream is closed; B watches the whole run (2.5 s > ORPHAN_SECONDS)
    events = take(b, "GET", f"/runs/{run_id}/events")
    assert events[-1].event == "complete"


def test_an_unwatched_run_is_cancelled_across_processes(clients):
    a, b = clients
    first = take(a, "GET", "/workflows/slow/execute?seconds=30", limit=1)
    run_id = first[0].json()["run_id"]
    status = wait_for(lambda: (s := run_status(b, run_id))["status"] != "running" and s, timeout=15)
    assert status["status"] == "cancelled"


def test_a_dead_executor_ends_the_streams_on_other_processes(pair, workflows):
    _, b = pair
    overrides = redis_overrides(KEEPALIVE_SECONDS=0.3, ORPHAN_SECONDS=30.0)
    overrides["EVENT_LOG_OPTIONS"] = pair[0].overrides["EVENT_LOG_OPTIONS"]
    with (
        ServerProcess("uvicorn", overrides=overrides) as doomed,
        httpx.Client(base_url=doomed.url, timeout=15) as c,
    ):
        run_id = c.post("/workflows/slow/execute", json={"inputs": {"seconds": 60}, "mode": "async"}).json()[
            "run_id"
        ]
        with (
            httpx.Client(base_url=b.url, timeout=15) as cb,
            connect_sse(cb, "GET", f"/runs/{run_id}/events") as src,
        ):
            events = []
            began = None
            for event in src.iter_sse():
                if not event.data:
                    continue
                events.append(event)
                if event.event == "progress" and began is None:
                    began = time.monotonic()
                    doomed.kill()
            assert events[-1].event == "error" and events[-1].json()["error"] == "interrupted"
            assert time.monotonic() - began < 10  # heartbeat TTL 1 s + keepalive 0.3 s, with margin
    run = Run.objects.get(pk=run_id)
    assert (run.status, run.error_type) == ("failed", "InternalError")


def test_an_unreachable_redis_ends_requests_with_a_clear_error(django_db_setup, workflows):
    overrides = {"EVENT_LOG": "redis", "EVENT_LOG_OPTIONS": {"URL": "redis://app:s3cret@127.0.0.1:1/0"}}
    with (
        ServerProcess("uvicorn", overrides=overrides) as server,
        httpx.Client(base_url=server.url, timeout=15) as c,
    ):
        started = c.post("/workflows/greet/execute", json={"inputs": {"name": "x"}}, headers=ACCEPT_SSE)
        streamed = c.get("/workflows/greet/execute?name=x")  # EventSource's way
    for response in (started, streamed):
        assert response.status_code == 503 and response.json()["error_type"] == "InternalError"
        assert "event log is unavailable: Redis at 127.0.0.1:1" in response.json()["error"]
        assert "s3cret" not in response.text


def test_a_run_that_redis_going_away_kept_from_starting_is_not_left_running(django_db_setup, workflows):
    from tests.tcp_proxy import TcpProxy

    require_redis()
    redis_port = int(URL.rsplit(":", 1)[1].split("/")[0])
    with TcpProxy(redis_port) as proxy:
        options = redis_overrides()
        options["EVENT_LOG_OPTIONS"]["URL"] = URL.replace(f":{redis_port}/", f":{proxy.port}/")
        server = ServerProcess("uvicorn", overrides=options).start()
        c = httpx.Client(base_url=server.url, timeout=15)
        first = c.post("/workflows/greet/execute", json={"inputs": {"name": "x"}})
    try:  # the proxy is gone: this process has announced itself, and now Redis refuses it
        response = c.post("/workflows/greet/execute", json={"inputs": {"name": "y"}})
    finally:
        c.close()
        server.stop()
    assert first.status_code == 200
    assert response.status_code == 503 and "event log is unavailable" in response.json()["error"]
    run = Run.objects.get(inputs={"name": "y"})
    assert (run.status, run.error_type) == ("failed", "InternalError")


def test_chaos_every_client_gets_every_event_once_in_order(pair, workflows):
    """Runs with token streams; clients drop at random points and resume on a random process."""
    urls = [p.url for p in pair]
    results: dict[str, list[int]] = {}
    failures: list[str] = []

    def client(n: int) -> None:
        rng = random.Random(20261124 + n)  # one per thread: random.Random is not shared safely
        try:
            with httpx.Client(base_url=rng.choice(urls), timeout=20) as c:
                got = take(
                    c,
                    "POST",
                    "/workflows/tokens/execute",
                    limit=rng.randint(1, 10),
                    json={"inputs": {"count": 40, "delay": 0.005}},
                    headers=ACCEPT_SSE,
                )
            run_id = got[0].json()["run_id"]
            seqs = [int(e.id.split(":")[1]) for e in got]
            for _ in range(100):  # 44 events: a run needs at most 44 resumes; more means it is stuck
                with httpx.Client(base_url=rng.choice(urls), timeout=20) as c:
                    more = take(
                        c,
                        "GET",
                        f"/runs/{run_id}/events",
                        limit=rng.choice([3, 10, None]),
                        headers={"Last-Event-ID": f"{run_id}:{seqs[-1]}"},
                    )
                seqs += [int(e.id.split(":")[1]) for e in more]
                if more and more[-1].event in ("complete", "error"):
                    break
            else:
                raise AssertionError(f"run {run_id}: no end after 100 resumes, at {seqs[-1]}")
            results[run_id] = seqs
        except Exception as exc:  # reported below with the others
            failures.append(f"client {n}: {exc!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert not [t for t in threads if t.is_alive()], "clients still reading after 60 s"
    lost = duplicated = disordered = 0
    for run_id, seqs in results.items():
        archived = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", flat=True))
        lost += len(set(archived) - set(seqs))
        duplicated += len(seqs) - len(set(seqs))
        disordered += sum(1 for x, y in itertools.pairwise(seqs) if y <= x)
    assert len(results) == 12
    assert (lost, duplicated, disordered) == (0, 0, 0)
