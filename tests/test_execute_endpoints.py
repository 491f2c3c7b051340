"""The execute endpoints: SSE by Accept or mode, GET for EventSource, JSON and async modes.

Most tests drive the demo application in process (tests/inprocess.py), on the fast path and, where
the middleware matters, through Django. Over a real socket (uvicorn and daphne): a failing run's
stream must end (daphne leaves a connection hanging when a stream raises), and the seed's own
clients read a stream to its end."""

import asyncio
import json

import httpx
import pytest

from nexus_sse.models import Run
from tests.inprocess import eventually, request, served_by_django
from tests.sse_helpers import ACCEPT_SSE, take

pytestmark = pytest.mark.django_db(transaction=True)

SLOW_RESEARCH = {"topic": "rivers", "fetch": {"delay": 0.05}, "summarise": {"delay": 0.05}}


@pytest.fixture
def client(live):
    with httpx.Client(base_url=live, timeout=15) as c:
        yield c


def assert_contract(events, workflow):
    """ids <run>:1..n, start first, exactly one terminal event last, progress with percent."""
    run_id = events[0].json()["run_id"]
    assert [e.id for e in events] == [f"{run_id}:{i}" for i in range(1, len(events) + 1)]
    assert events[0].event == "start"
    assert events[0].json()["workflow_id"] == workflow and events[0].json()["version"] == "1.0.0"
    assert [e.event for e in events].count("complete") + [e.event for e in events].count("error") == 1
    assert events[-1].event in ("complete", "error")
    for e in events:
        assert e.json()["run_id"] == run_id
    progress = [e.json() for e in events if e.event == "progress"]
    assert progress and all(0 <= p["percent"] <= 100 for p in progress)
    return run_id


# A cookie sends the request through Django's handler and middleware (GZipMiddleware is on).
PATHS = pytest.mark.parametrize("headers", [{}, {"Cookie": "anything=1"}], ids=["fast-path", "django"])


@PATHS
async def test_post_stream_has_the_sse_headers_and_sends_retry_first(workflows, headers):
    response = await request(
        "POST",
        "/workflows/chat/execute",
        json={"inputs": {"message": "Hi"}},
        headers={**headers, **ACCEPT_SSE, "Accept-Encoding": "gzip"},
    )
    assert served_by_django(response) is bool(headers)
    assert response.status == 200
    assert response.header("Content-Type") == "text/event-stream; charset=utf-8"
    assert response.header("Cache-Control") == "no-cache"
    assert response.header("X-Accel-Buffering") == "no"
    assert response.header("Content-Encoding") is None  # not gzipped
    first, *_ = (chunk for chunk, _ in response.chunks if chunk)
    assert first.startswith(b"retry: 3000\n\n")
    run_id = response.header("X-Run-Id")
    assert f"id: {run_id}:1\nevent: start\n".encode() in response.body
    assert response.body.endswith(b"\n\n") and b"event: complete\n" in response.body
    assert response.complete


async def test_chat_stream_tokens_add_up_to_the_response(workflows):
    response = await request(
        "POST", "/workflows/chat/execute", json={"inputs": {"message": "Hello!"}}, headers=ACCEPT_SSE
    )
    events = response.events()
    assert_contract(events, "chat")
    tokens = [e.json()["delta"] for e in events if e.event == "token"]
    result = events[-1].json()["result"]
    assert len(tokens) > 5 and "".join(tokens) == result["response"]
    assert 'You said: "Hello!"' in result["response"] and result["metadata"]["provider"] == "offline"
    assert set(events[-1].json()["outputs"]) == {"chat_agent"}


async def test_mode_stream_in_the_body_streams_without_an_accept_header(workflows):
    response = await request(
        "POST", "/workflows/greet/execute", json={"inputs": {"name": "Ann"}, "mode": "stream"}
    )
    events = response.events()
    assert_contract(events, "greet")
    assert events[-1].json()["result"] == {"result": "Hello, Ann!"}


async def test_get_streams_for_eventsource_with_plain_and_node_scoped_query_inputs(workflows):
    response = await request(
        "GET", "/workflows/research/execute?topic=rivers&fetch.delay=0.05&summarise.delay=0.05"
    )
    events = response.events()
    assert_contract(events, "research")
    statuses = [(p["node"], p["status"]) for p in (e.json() for e in events if e.event == "progress")]
    for node in ("fetch", "summarise", "report"):
        assert (node, "started") in statuses and (node, "completed") in statuses
    assert any(s == "running" for _, s in statuses)  # progress reported inside the fetch node
    assert events[-1].json()["result"]["result"].startswith("Report on rivers:")


async def test_get_takes_inputs_as_json_too(workflows):
    query = httpx.QueryParams({"inputs": json.dumps({"name": "Bo"})})
    response = await request("GET", f"/workflows/greet/execute?{query}")
    assert response.events()[-1].json()["result"] == {"result": "Hello, Bo!"}


async def test_json_mode_returns_what_the_stream_completes_with(workflows):
    target = "/workflows/research/execute"
    streamed = await request("POST", target, json={"inputs": SLOW_RESEARCH}, headers=ACCEPT_SSE)
    complete = streamed.events()[-1].json()
    response = await request("POST", target, json={"inputs": SLOW_RESEARCH})
    assert response.status == 200
    body = response.json()
    assert set(body) == {"run_id", "workflow_id", "version", "status", "result", "outputs", "execution_time"}
    assert body["status"] == "completed" and body["workflow_id"] == "research"
    assert body["result"] == complete["result"] and body["outputs"] == complete["outputs"]
    assert body["run_id"] != complete["run_id"]
    sync = await request("POST", target, json={"inputs": SLOW_RESEARCH, "mode": "sync"})
    assert sync.json()["result"] == complete["result"]
    status = (await request("GET", f"/runs/{body['run_id']}")).json()
    assert status["status"] == "completed" and status["result"] == complete["result"]


async def test_async_mode_answers_202_and_its_urls_stream_and_report_the_run(workflows):
    response = await request(
        "POST", "/workflows/greet/execute", json={"inputs": {"name": "Cy"}, "mode": "async"}
    )
    assert response.status == 202
    body = response.json()
    assert body["status"] == "pending" and body["events_url"] == f"/runs/{body['run_id']}/events"
    events = (await request("GET", body["events_url"])).events()
    assert events[0].event == "start" and events[-1].json()["result"] == {"result": "Hello, Cy!"}

    async def completed():
        status = (await request("GET", body["status_url"])).json()
        return status["status"] == "completed" and status

    status = await eventually(completed)
    assert status["result"] == {"result": "Hello, Cy!"} and status["execution_time"] is not None


# --- over a real socket ---------------------------------------------------------------------------


def test_failing_node_ends_the_stream_with_an_error_that_hides_internals(client):
    events = take(client, "POST", "/workflows/fail/execute", json={"inputs": {}}, headers=ACCEPT_SSE)
    assert [e.event for e in events][-1] == "error"
    error = events[-1].json()
    assert error["error_type"] == "NodeError" and error["node"] == "fail"
    assert "secret" not in error["error"] and set(error) >= {"error", "error_type", "run_id", "timestamp"}
    json_error = client.post("/workflows/fail/execute", json={})
    assert json_error.status_code == 500 and json_error.json()["error_type"] == "NodeError"
    assert "secret" not in json_error.text


# --- the seed's Python clients, as the seed writes them (sse_streaming.md, "Python Client Example") ---
# Its two clients share one line loop, word for word: it is written here once (SeedParser.feed);
# around it, each client's own transport.


class SeedParser:
    """The seed's SSE line loop; ``handle_event(event_type, data, event_id)`` per event with data."""

    def __init__(self, handle_event):
        self.handle_event = handle_event
        self.current_event = {}
        self.buffer = ""

    def feed(self, chunk):
        self.buffer += chunk
        lines = self.buffer.split("\n")
        self.buffer = lines.pop() if lines else ""
        for line in lines:
            if line == "":
                if self.current_event.get("data"):
                    event_type = self.current_event.get("event", "message")
                    event_data = json.loads(self.current_event["data"])
                    event_id = self.current_event.get("id")
                    self.handle_event(event_type, event_data, event_id)
                    self.current_event = {}
            elif line.startswith(":"):
                print("Keepalive")
            elif ":" in line:
                field, _, value = line.partition(":")
                value = value.lstrip()
                self.current_event[field] = value


def seed_sync_client(url, inputs, parser):
    import requests

    response = requests.post(
        url, json={"inputs": inputs}, headers={"Accept": "text/event-stream"}, stream=True
    )
    for chunk in response.iter_content(chunk_size=1, decode_unicode=True):
        if chunk:
            parser.feed(chunk)


async def seed_async_client(url, inputs, parser):
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "POST", url, json={"inputs": inputs}, headers={"Accept": "text/event-stream"}, timeout=60.0
        ) as response,
    ):
        async for chunk in response.aiter_text():
            parser.feed(chunk)


@pytest.mark.parametrize("flavour", ["requests", "httpx"])
def test_the_seeds_python_clients_read_the_chat_stream_to_complete(live, flavour):
    seen = []
    url = f"{live}/workflows/chat/execute"
    parser = SeedParser(lambda event_type, data, event_id: seen.append((event_type, data, event_id)))
    if flavour == "requests":
        seed_sync_client(url, {"message": "Hello!"}, parser)
    else:
        asyncio.run(seed_async_client(url, {"message": "Hello!"}, parser))
    assert seen[0][0] == "start" and seen[0][1]["workflow_id"] == "chat"
    assert seen[-1][0] == "complete" and 'You said: "Hello!"' in seen[-1][1]["result"]["response"]
    assert all(event_id.startswith(seen[0][1]["run_id"] + ":") for _, _, event_id in seen)
    assert Run.objects.get(pk=seen[0][1]["run_id"]).status == "completed"
