"""The Python client over a real socket: every demo workflow, resumes after cuts, backoff, typed errors."""

import threading
import time

import httpx
import pytest

from nexus_sse.client import AsyncNexusClient, CompleteEvent, ConnectionLost, NexusClient, TokenEvent, run
from nexus_sse.client.common import Cursor
from nexus_sse.exceptions import InternalError, NodeError, NotFound, RunCancelledError, ValidationError
from nexus_sse.models import Run, RunEvent
from tests.live import ServerProcess
from tests.sse_helpers import wait_for
from tests.tcp_proxy import TcpProxy

OVERRIDES = {
    "RETRY_MILLISECONDS": 200,
    "ORPHAN_SECONDS": 30.0,
    "LLM_PROVIDERS": {"offline": {"BACKEND": "offline", "TOKEN_DELAY": 0.0}},
}


@pytest.fixture(scope="module")
def server(django_db_setup):
    with ServerProcess("uvicorn", overrides=OVERRIDES) as proc:
        yield proc


@pytest.fixture
def url(server, workflows):
    return server.url


@pytest.mark.parametrize(
    ("workflow", "inputs", "check"),
    [
        ("chat", {"message": "Hello!"}, lambda r: 'You said: "Hello!"' in r["response"]),
        (
            "research",
            {"topic": "tides", "fetch": {"delay": 0.05}, "summarise": {"delay": 0.05}},
            lambda r: r["result"].startswith("Report on tides:"),
        ),
        ("greet", {"name": "Ann"}, lambda r: r == {"result": "Hello, Ann!"}),
    ],
)
def test_the_client_reads_every_demo_workflow_to_completion(url, workflow, inputs, check):
    with NexusClient(url) as client:
        events = list(client.stream(workflow, inputs))
        assert events[0].event == "start" and events[0].workflow_id == workflow
        assert isinstance(events[-1], CompleteEvent) and check(events[-1].result)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert check(client.run(workflow, inputs))
    assert check(run(f"{url}/workflows/{workflow}/execute", inputs=inputs))


async def test_the_async_client_streams_and_runs(url):
    async with AsyncNexusClient(url) as client:
        events = [e async for e in client.stream("chat", {"message": "async hi"})]
        tokens = "".join(e.delta for e in events if isinstance(e, TokenEvent))
        assert tokens == events[-1].result["response"]
        assert await client.run("greet", {"name": "Bo"}) == {"result": "Hello, Bo!"}
        status = await client.status(events[0].run_id)
        assert status["status"] == "completed"


@pytest.mark.parametrize("cut_after", [1, 3, 10, 25])
def test_a_cut_connection_resumes_with_every_event_exactly_once(server, workflows, cut_after):
    reconnects = []
    with (
        TcpProxy(server.port) as proxy,
        NexusClient(proxy.url, on_reconnect=lambda a, d: reconnects.append(d)) as c,
    ):
        events = []
        for event in c.stream("tokens", {"count": 30, "delay": 0.01}):
            events.append(event)
            if len(events) == cut_after:
                proxy.cut()
    run_id = events[0].run_id
    archived = list(RunEvent.objects.filter(run_id=run_id).order_by("seq").values_list("seq", "event"))
    assert [(e.seq, e.event) for e in events] == archived
    assert len(reconnects) >= 1 and Run.objects.filter(workflow__slug="tokens").count() == 1


@pytest.mark.parametrize(
    ("jitter", "expected"),
    [
        ("low", [0.2, 0.4, 0.8, 0.8, 0.8, 0.8]),  # never sooner than the retry hint; below the cap at the cap
        ("high", [0.3, 0.6, 1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_backoff_honours_retry_and_grows_to_its_cap(monkeypatch, jitter, expected):
    from nexus_sse.client import common

    monkeypatch.setattr(common.random, "uniform", (lambda a, b: a) if jitter == "low" else (lambda a, b: b))
    cursor = Cursor(retry_ms=200)
    delays = [cursor.next_delay(max_backoff=1.0) for _ in range(6)]
    assert delays == pytest.approx(expected)
    cursor.accept("token", '{"delta": "x", "run_id": "r"}', "r:1", None)
    assert cursor.attempt == 0  # an event resets the backoff


def test_backoff_waits_at_least_a_retry_after_or_a_hint_above_the_cap(monkeypatch):
    from nexus_sse.client import common

    monkeypatch.setattr(common.random, "uniform", lambda a, b: a)
    assert Cursor(retry_ms=5000).next_delay(max_backoff=1.0) == 5.0
    cursor = Cursor(retry_ms=100, retry_after=2.0)
    assert cursor.next_delay(max_backoff=30.0) == 2.0
    assert cursor.next_delay(max_backoff=30.0) == pytest.approx(0.2)  # a Retry-After counts once


def sse_block(seq, event, data, run="r1"):
    return f"id: {run}:{seq}\nevent: {event}\ndata: {data}\n\n"


def flaky_resumes():
    """A fake server: the stream drops after 2 events; resumes get 503, then 429, then the rest."""
    answers = [
        httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "x-run-id": "r1"},
            text="retry: 10\n\n"
            + sse_block(1, "start", '{"run_id": "r1"}')
            + sse_block(2, "token", '{"delta": "a", "run_id": "r1"}'),
        ),
        httpx.Response(
            503, headers={"retry-after": "0"}, json={"error": "draining", "error_type": "InternalError"}
        ),
        httpx.Response(429, json={"error": "too many open streams", "error_type": "RateLimitError"}),
        httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            text=sse_block(3, "complete", '{"result": 1, "run_id": "r1"}'),
        ),
    ]
    seen = []

    def handle(request):
        seen.append((request.method, request.url.path, request.headers.get("last-event-id")))
        return answers[len(seen) - 1]

    return handle, seen


def test_resumes_refused_with_429_or_5xx_are_retried_after_a_backoff():
    handle, seen = flaky_resumes()
    delays = []
    http = httpx.Client(transport=httpx.MockTransport(handle))
    with NexusClient("http://nexus", http=http, on_reconnect=lambda a, d: delays.append(d)) as client:
        events = list(client.stream("tokens"))
    assert [e.seq for e in events] == [1, 2, 3] and events[-1].event == "complete"
    assert seen == [("POST", "/workflows/tokens/execute", None)] + [("GET", "/runs/r1/events", "r1:2")] * 3
    assert len(delays) == 3 and all(d >= 0.01 for d in delays)


async def test_the_async_client_retries_refused_resumes_too():
    handle, seen = flaky_resumes()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    async with AsyncNexusClient("http://nexus", http=http) as client:
        events = [e async for e in client.stream("tokens")]
    assert [e.seq for e in events] == [1, 2, 3] and len(seen) == 4


def test_a_refused_start_is_never_retried():
    calls = []

    def handle(request):
        calls.append(request)
        return httpx.Response(503, json={"error": "draining", "error_type": "InternalError"})

    http = httpx.Client(transport=httpx.MockTransport(handle))
    with NexusClient("http://nexus", http=http) as client, pytest.raises(InternalError):
        list(client.stream("tokens"))
    assert len(calls) == 1  # it may have started a run: sending it again could run it twice


def test_the_first_reconnect_waits_about_the_servers_retry(server, workflows):
    delays, cut_at = [], []
    with (
        TcpProxy(server.port) as proxy,
        NexusClient(proxy.url, on_reconnect=lambda a, d: delays.append(d)) as c,
    ):
        resumed_at = None
        for event in c.stream("tokens", {"count": 10, "delay": 0.02}):
            if event.seq == 3:
                cut_at.append(time.monotonic())
                proxy.cut()
            elif event.seq == 4:
                resumed_at = time.monotonic()
    assert 0.2 <= delays[0] <= 0.3  # RETRY_MILLISECONDS=200 with jitter above it
    assert resumed_at - cut_at[0] >= delays[0]


def test_errors_are_typed_by_error_type(url):
    with NexusClient(url) as client:
        with pytest.raises(NodeError) as failed:
            client.run("fail")
        assert failed.value.extra["run_id"] and "secret" not in failed.value.message
        with pytest.raises(ValidationError) as invalid:
            client.run("typed", {"count": "x"})
        assert invalid.value.path == "inputs.count"
        with pytest.raises(NotFound):
            list(client.stream("nope"))


def test_a_cancelled_run_ends_its_stream_and_run_raises_the_cancelled_error(url):
    with NexusClient(url) as client, NexusClient(url) as other:
        events = client.stream("slow", {"seconds": 20})
        first = next(events)
        assert other.cancel(first.run_id)["status"] == "cancelling"
        rest = list(events)
        assert rest[-1].event == "error" and rest[-1].error_type == "CancelledError"

        def cancel_the_running_run():
            running = wait_for(lambda: Run.objects.filter(workflow__slug="slow", status="running").first())
            other.cancel(str(running.pk))

        canceller = threading.Thread(target=cancel_the_running_run)
        canceller.start()
        try:
            with pytest.raises(RunCancelledError) as info:
                client.run("slow", {"seconds": 20})
        finally:
            canceller.join()
        assert info.value.error_type == "CancelledError"


def test_a_stream_token_client_reads_status_and_says_why_it_cannot_cancel(url):
    from nexus_sse.exceptions import AuthenticationError
    from tests import factories

    owner = factories.token(factories.user("ann"))
    issued = httpx.post(f"{url}/api/stream-tokens/", json={"workflow": "slow"}, headers=owner).json()["token"]
    with NexusClient(url, stream_token=issued) as client:
        events = client.stream("slow", {"seconds": 20})
        run_id = next(events).run_id
        assert client.status(run_id)["status"] == "running"  # a GET: the stream token is enough
        # stream tokens are GET-only by design: the error must say what cancelling needs
        with pytest.raises(AuthenticationError, match="stream token") as info:
            client.cancel(run_id)
        assert "token=" in info.value.message and info.value.extra["run_id"] == run_id
        assert httpx.post(f"{url}/runs/{run_id}/cancel", headers=owner).status_code == 202
        assert list(events)[-1].error_type == "CancelledError"


async def test_the_async_client_explains_a_cancel_refused_to_a_stream_token(url):
    from asgiref.sync import sync_to_async

    from nexus_sse.exceptions import AuthenticationError
    from tests import factories

    owner = await sync_to_async(lambda: factories.token(factories.user("bob")))()
    async with httpx.AsyncClient(base_url=url) as http:
        issued = (await http.post("/api/stream-tokens/", json={"workflow": "slow"}, headers=owner)).json()[
            "token"
        ]
        async with AsyncNexusClient(url, stream_token=issued) as client:
            events = client.stream("slow", {"seconds": 20})
            run_id = (await anext(events)).run_id
            assert (await client.status(run_id))["status"] == "running"
            with pytest.raises(AuthenticationError, match="stream token"):
                await client.cancel(run_id)
            assert (await http.post(f"/runs/{run_id}/cancel", headers=owner)).status_code == 202
            assert [e async for e in events][-1].error_type == "CancelledError"


def test_a_drop_before_the_run_id_is_known_never_reruns(server, workflows):
    with TcpProxy(server.port) as proxy:
        proxy.cut()  # nothing open yet: harmless
        with NexusClient(proxy.url, max_retries=0) as client:
            it = client.stream("tokens", {"count": 50, "delay": 0.02})
            first = next(it)
            proxy.cut()
            with pytest.raises(ConnectionLost):
                list(it)
    wait_for(lambda: Run.objects.filter(workflow__slug="tokens").exists())  # written with its first batch
    assert Run.objects.filter(workflow__slug="tokens").count() == 1
    assert first.event == "start"


def test_kailash_style_ids_are_not_resumed():
    cursor = Cursor()
    event = cursor.accept("start", '{"workflow_id": "x"}', "1", None)
    assert event.event == "start" and not cursor.resumable
