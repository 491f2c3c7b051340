"""The execute endpoints over a real socket (uvicorn and daphne): SSE by Accept or mode, GET for
EventSource, JSON and async modes, and the seed's own clients."""

import asyncio
import json

import httpx
import pytest

from nexus_sse.models import Run
from tests.sse_helpers import ACCEPT_SSE, take, wait_for

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


def test_post_stream_has_the_sse_headers_and_sends_retry_first(client):
    with client.stream(
        "POST",
        "/workflows/chat/execute",
        json={"inputs": {"message": "Hi"}},
        headers={**ACCEPT_SSE, "Accept-Encoding": "gzip"},
    ) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        body = first + b"".join(chunks)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in response.headers  # GZipMiddleware is on in the demo site
    assert first.startswith(b"retry: 3000\n\n")
    run_id = response.headers["x-run-id"]
    assert f"id: {run_id}:1\nevent: start\n".encode() in body
    assert body.endswith(b"\n\n") and b"event: complete\n" in body


def test_chat_stream_tokens_add_up_to_the_response(client):
    events = take(
        client, "POST", "/workflows/chat/execute", json={"inputs": {"message": "Hello!"}}, headers=ACCEPT_SSE
    )
    assert_contract(events, "chat")
    tokens = [e.json()["delta"] for e in events if e.event == "token"]
    result = events[-1].json()["result"]
    assert len(tokens) > 5 and "".join(tokens) == result["response"]
    assert 'You said: "Hello!"' in result["response"] and result["metadata"]["provider"] == "offline"
    assert set(events[-1].json()["outputs"]) == {"chat_agent"}


def test_mode_stream_in_the_body_streams_without_an_accept_header(client):
    events = take(
        client, "POST", "/workflows/greet/execute", json={"inputs": {"name": "Ann"}, "mode": "stream"}
    )
    assert_contract(events, "greet")
    assert events[-1].json()["result"] == {"result": "Hello, Ann!"}


def test_get_streams_for_eventsource_with_plain_and_node_scoped_query_inputs(client):
    events = take(
        client, "GET", "/workflows/research/execute?topic=rivers&fetch.delay=0.05&summarise.delay=0.05"
    )
    assert_contract(events, "research")
    statuses = [(p["node"], p["status"]) for p in (e.json() for e in events if e.event == "progress")]
    for node in ("fetch", "summarise", "report"):
        assert (node, "started") in statuses and (node, "completed") in statuses
    assert any(s == "running" for _, s in statuses)  # progress reported inside the fetch node
    assert events[-1].json()["result"]["result"].startswith("Report on rivers:")


def test_get_takes_inputs_as_json_too(client):
    query = json.dumps({"name": "Bo"})
    events = take(client, "GET", "/workflows/greet/execute", params={"inputs": query})
    assert events[-1].json()["result"] == {"result": "Hello, Bo!"}


def test_json_mode_returns_what_the_stream_completes_with(client):
    streamed = take(
        client, "POST", "/workflows/research/execute", json={"inputs": SLOW_RESEARCH}, headers=ACCEPT_SSE
    )
    complete = streamed[-1].json()
    response = client.post("/workflows/research/execute", json={"inputs": SLOW_RESEARCH})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"run_id", "workflow_id", "version", "status", "result", "outputs", "execution_time"}
    assert body["status"] == "completed" and body["workflow_id"] == "research"
    assert body["result"] == complete["result"] and body["outputs"] == complete["outputs"]
    assert body["run_id"] != complete["run_id"]
    sync = client.post("/workflows/research/execute", json={"inputs": SLOW_RESEARCH, "mode": "sync"})
    assert sync.json()["result"] == complete["result"]
    status = client.get(f"/runs/{body['run_id']}").json()
    assert status["status"] == "completed" and status["result"] == complete["result"]


def test_async_mode_answers_202_and_its_urls_stream_and_report_the_run(client):
    response = client.post("/workflows/greet/execute", json={"inputs": {"name": "Cy"}, "mode": "async"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["events_url"] == f"/runs/{body['run_id']}/events"
    events = take(client, "GET", body["events_url"])
    assert events[0].event == "start" and events[-1].json()["result"] == {"result": "Hello, Cy!"}
    status = wait_for(lambda: (s := client.get(body["status_url"]).json())["status"] == "completed" and s)
    assert status["result"] == {"result": "Hello, Cy!"} and status["execution_time"] is not None


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


def seed_sync_client(url, inputs, handle_event):
    import requests

    response = requests.post(
        url, json={"inputs": inputs}, headers={"Accept": "text/event-stream"}, stream=True
    )
    current_event = {}
    buffer = ""
    for chunk in response.iter_content(chunk_size=1, decode_unicode=True):
        if chunk:
            buffer += chunk
            if "\n" in buffer:
                lines = buffer.split("\n")
                buffer = lines.pop() if lines else ""
                for line in lines:
                    if line == "":
                        if current_event.get("data"):
                            event_type = current_event.get("event", "message")
                            event_data = json.loads(current_event["data"])
                            event_id = current_event.get("id")
                            handle_event(event_type, event_data, event_id)
                            current_event = {}
                    elif line.startswith(":"):
                        print("Keepalive")
                    elif ":" in line:
                        field, _, value = line.partition(":")
                        value = value.lstrip()
                        current_event[field] = value


async def seed_async_client(url, inputs, handle_event):
    async with httpx.AsyncClient() as client:
        async with client.stream(
            "POST", url, json={"inputs": inputs}, headers={"Accept": "text/event-stream"}, timeout=60.0
        ) as response:
            current_event = {}
            buffer = ""
            async for chunk in response.aiter_text():
                buffer += chunk
                lines = buffer.split("\n")
                buffer = lines.pop() if lines else ""
                for line in lines:
                    if line == "":
                        if current_event.get("data"):
                            event_type = current_event.get("event", "message")
                            event_data = json.loads(current_event["data"])
                            event_id = current_event.get("id")
                            handle_event(event_type, event_data, event_id)
                            current_event = {}
                    elif line.startswith(":"):
                        print("Keepalive")
                    elif ":" in line:
                        field, _, value = line.partition(":")
                        value = value.lstrip()
                        current_event[field] = value


@pytest.mark.parametrize("flavour", ["requests", "httpx"])
def test_the_seeds_python_clients_read_the_chat_stream_to_complete(live, flavour):
    seen = []
    url = f"{live}/workflows/chat/execute"
    handle = lambda event_type, data, event_id: seen.append((event_type, data, event_id))
    if flavour == "requests":
        seed_sync_client(url, {"message": "Hello!"}, handle)
    else:
        asyncio.run(seed_async_client(url, {"message": "Hello!"}, handle))
    assert seen[0][0] == "start" and seen[0][1]["workflow_id"] == "chat"
    assert seen[-1][0] == "complete" and 'You said: "Hello!"' in seen[-1][1]["result"]["response"]
    assert all(event_id.startswith(seen[0][1]["run_id"] + ":") for _, _, event_id in seen)
    assert Run.objects.get(pk=seen[0][1]["run_id"]).status == "completed"
