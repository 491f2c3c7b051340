"""The ASGI fast path (nexus_sse/asgi.py): which requests it serves, and that it answers like Django.

Two servers of each kind run side by side: the demo application with the fast path on, and the same
application with ``FAST_PATH = False`` (everything through Django's handler and middleware). The demo
site's SecurityMiddleware (the outermost) marks every response that went through Django with
X-Content-Type-Options: that header tells which path served a request.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest

from tests import factories
from tests.live import ServerProcess
from tests.sse_helpers import ACCEPT_SSE, take, wait_for

OVERRIDES = {"WORKFLOW_CACHE_SECONDS": 0.0, "MAX_BODY_BYTES": 2048, "MAX_STREAMS_PER_USER": 1}


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def servers(request, django_db_setup):
    with (
        ServerProcess(request.param, overrides=OVERRIDES) as fast,
        ServerProcess(request.param, overrides={**OVERRIDES, "FAST_PATH": False}) as django,
    ):
        yield fast, django


@pytest.fixture
def fast(servers, workflows):
    return servers[0]


@pytest.fixture
def both(servers, workflows):
    return servers


def served_by_django(response: httpx.Response) -> bool:
    return response.headers.get("x-content-type-options") == "nosniff"


def test_cookie_less_stream_requests_take_the_fast_path(fast):
    with httpx.Client(base_url=fast.url, timeout=10) as client:
        with client.stream(
            "POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=ACCEPT_SSE
        ) as response:
            body = response.read()
        assert response.status_code == 200 and b"event: complete" in body
        assert not served_by_django(response)
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert (
            response.headers["x-accel-buffering"] == "no" and response.headers["cache-control"] == "no-cache"
        )
        sync = client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}})
        assert sync.status_code == 200 and not served_by_django(sync)
        assert not served_by_django(client.get("/workflows/greet/execute?name=a"))  # EventSource's GET


@pytest.mark.parametrize(
    "headers",
    [
        {"Cookie": "anything=1"},  # a session may be in there: Django authenticates
        {"Origin": "https://allowed.example"},  # CORS is django-cors-headers' job
    ],
)
def test_requests_with_cookies_or_an_origin_go_through_django(fast, headers):
    with httpx.Client(base_url=fast.url, timeout=10) as client:
        response = client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=headers)
    assert response.status_code == 200 and served_by_django(response)
    if "Origin" in headers:
        assert response.headers["access-control-allow-origin"] == "https://allowed.example"


def test_other_endpoints_and_methods_go_through_django(fast):
    with httpx.Client(base_url=fast.url, timeout=10) as client:
        started = client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}, "mode": "async"})
        assert started.status_code == 202 and not served_by_django(started)
        assert served_by_django(client.get(started.json()["status_url"]))
        assert served_by_django(client.put("/workflows/greet/execute"))
        assert served_by_django(client.get("/api/workflows/"))


def test_a_disallowed_host_is_answered_by_django(both):
    for server in both:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            response = client.post(
                "/workflows/greet/execute", json={"inputs": {}}, headers={"Host": "evil.example"}
            )
        assert response.status_code == 400 and served_by_django(response)


def without_ids(value):
    """A JSON body with run ids, URLs holding them, timestamps and durations blanked out."""
    if isinstance(value, dict):
        return {
            k: (
                "*"
                if k in ("run_id", "timestamp", "execution_time", "events_url", "status_url")
                else without_ids(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


REQUESTS = [
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {"name": "Ann"}}}),
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {"name": "Ann"}, "mode": "async"}}),
    ("POST", "/workflows/greet/execute", {"json": {"parameters": {"name": "Ann"}, "mode": "sync"}}),
    ("POST", "/workflows/nope/execute", {"json": {"inputs": {}}}),
    (
        "POST",
        "/workflows/greet/execute",
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
    ),
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {}, "extra": 1}}),
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {"name": "x" * 4000}}}),  # > MAX_BODY_BYTES
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {}, "mode": "fast"}}),
    ("GET", "/workflows/greet/execute?mode=sync", {}),
    ("GET", "/workflows/greet/execute", {"headers": {"Last-Event-ID": "garbage"}}),
    (
        "GET",
        "/workflows/greet/execute",
        {"headers": {"Last-Event-ID": "00000000-0000-0000-0000-000000000000:3"}},
    ),
    ("GET", "/runs/00000000-0000-0000-0000-000000000000/events", {}),
    ("POST", "/workflows/fail/execute", {"json": {"inputs": {}}}),
    (
        "POST",
        "/workflows/greet/execute",
        {"json": {"inputs": {}}, "headers": {"Authorization": "Token wrong"}},
    ),
]


@pytest.mark.parametrize("method,path,kwargs", REQUESTS)
def test_the_fast_path_answers_what_django_answers(both, method, path, kwargs):
    answers = []
    for server in both:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            response = client.request(method, path, **kwargs)
        body = (
            response.json() if response.headers.get("content-type") == "application/json" else response.text
        )
        answers.append(
            (
                response.status_code,
                response.headers.get("content-type"),
                response.headers.get("retry-after"),
                without_ids(body),
            )
        )
    assert answers[0] == answers[1]


def test_streams_carry_the_same_events_on_both_paths(both):
    names = []
    for server in both:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            events = take(client, "POST", "/workflows/steps/execute", json={"inputs": {}}, headers=ACCEPT_SSE)
        names.append([(e.event, without_ids(e.json())) for e in events])
    assert names[0] == names[1] and names[0][-1][0] == "complete"


def test_policies_hold_on_the_fast_path(fast):
    factories.set_policy("greet", access="authenticated")
    ann = factories.user("ann")
    with httpx.Client(base_url=fast.url, timeout=10) as client:
        anonymous = client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}})
        assert anonymous.status_code == 401 and not served_by_django(anonymous)
        with_token = client.post(
            "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=factories.token(ann)
        )
        assert with_token.status_code == 200 and not served_by_django(with_token)
        assert with_token.json()["result"] == {"result": "Hello, a!"}


def test_a_chunked_body_is_read_whole_and_a_large_one_refused(fast):
    def chunks(parts):
        yield from parts

    with httpx.Client(base_url=fast.url, timeout=10) as client:
        ok = client.post(
            "/workflows/greet/execute",
            content=chunks([b'{"inputs": ', b'{"name": "Bo"}}']),
            headers={"Content-Type": "application/json"},
        )
        assert ok.status_code == 200 and ok.json()["result"] == {"result": "Hello, Bo!"}
        big = client.post(
            "/workflows/greet/execute",
            content=chunks([b'{"inputs": {"name": "', b"x" * 3000, b'"}}']),
            headers={"Content-Type": "application/json"},
        )
        assert big.status_code == 413 and big.json()["error_type"] == "ValidationError"


def server_threads(server: ServerProcess) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def test_idle_streams_hold_no_threads_and_a_closed_one_frees_its_slot(fast):
    # MAX_STREAMS_PER_USER is 1 here: a second stream is refused until the first one's slot is freed,
    # which happens only when the server has noticed the disconnect and cleaned up.
    opened = []
    try:
        before = server_threads(fast)
        with httpx.Client(base_url=fast.url, timeout=10) as client:
            first = take(client, "GET", "/workflows/slow/execute?seconds=30", limit=1)
            assert first[0].event == "start"
        # the client is closed: its stream is gone
        with httpx.Client(base_url=fast.url, timeout=10) as client:

            def second_accepted():
                response = client.post(
                    "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=ACCEPT_SSE
                )
                return response.status_code == 200

            wait_for(second_accepted)
        # Idle streams from many clients (one each: the cap is per IP, so use raw sockets on
        # 127.0.0.x addresses) must not add a thread each.
        for i in range(2, 32):
            sock = socket.create_connection(("127.0.0.1", fast.port), source_address=(f"127.0.0.{i}", 0))
            opened.append(sock)
            sock.sendall(b"GET /workflows/slow/execute?seconds=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            received = b""
            while b"event: start" not in received:
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            assert b" 200 " in received.split(b"\r\n", 1)[0]
        assert server_threads(fast) <= before + 3
    finally:
        for sock in opened:
            sock.close()


def test_the_fast_path_serves_under_a_root_path(django_db_setup, workflows):
    # uvicorn --root-path: a proxy strips /mount before the request reaches us; URLs we hand out carry it.
    with (
        ServerProcess("uvicorn", overrides=OVERRIDES, args=("--root-path", "/mount")) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        started = client.post("/workflows/greet/execute", json={"inputs": {"name": "R"}, "mode": "async"})
        assert started.status_code == 202 and not served_by_django(started)
        body = started.json()
        assert body["events_url"] == f"/mount/runs/{body['run_id']}/events"
        events = take(client, "GET", body["events_url"].removeprefix("/mount"))
    assert events[-1].event == "complete" and events[-1].json()["result"] == {"result": "Hello, R!"}


async def asgi_messages(
    path: str, body: bytes = b"", method: str = "POST", headers: tuple = (), stop=None
) -> list[dict]:
    """The ASGI messages the demo application sends for one request, in-process (until ``stop``)."""
    from project.asgi import application

    messages: list[dict] = []
    done = asyncio.Event()
    request = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if request:
            return request.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        messages.append(message)
        if (message["type"] == "http.response.body" and not message.get("more_body")) or (
            stop and stop(message)
        ):
            done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await asyncio.wait_for(application(scope, receive, send), 10)
    return messages


@pytest.mark.django_db(transaction=True)
async def test_a_new_runs_retry_hint_and_start_event_go_out_in_one_write(workflows):
    messages = await asgi_messages(
        "/workflows/greet/execute", b'{"inputs": {"name": "a"}}', headers=((b"accept", b"text/event-stream"),)
    )
    bodies = [m["body"] for m in messages if m["type"] == "http.response.body" and m.get("body")]
    assert bodies[0].startswith(b"retry: 3000\n\nid: ") and b"event: start" in bodies[0]
    assert b"event: complete" in b"".join(bodies)


@pytest.mark.django_db(transaction=True)
async def test_attaching_to_a_quiet_run_sends_the_retry_hint_alone_at_once(workflows):
    started = await asgi_messages("/workflows/slow/execute", b'{"inputs": {"seconds": 5}, "mode": "async"}')
    run_id = json.loads(started[-1]["body"])["run_id"]
    messages = await asgi_messages(
        f"/runs/{run_id}/events",
        method="GET",
        headers=((b"last-event-id", f"{run_id}:2".encode()),),
        stop=lambda m: m.get("body", b"").startswith(b"retry"),
    )
    bodies = [m["body"] for m in messages if m["type"] == "http.response.body" and m.get("body")]
    assert bodies == [b"retry: 3000\n\n"]  # while the run is quiet, the hint alone, not held back


def body_messages(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["type"] == "http.response.body"]


@pytest.mark.django_db(transaction=True)
async def test_the_terminal_event_ends_the_body_in_its_own_write_and_the_stream_still_cleans_up(workflows):
    from nexus_sse import metrics
    from nexus_sse.eventlog import get_event_log

    disconnects, open_streams = metrics.disconnects._value.get(), metrics.open_streams._value.get()
    # asgi_messages' client reports "disconnect" as soon as the body is complete, as uvicorn does:
    # the stream's cleanup after its last write must not be cancelled by it.
    messages = await asgi_messages(
        "/workflows/greet/execute", b'{"inputs": {"name": "a"}}', headers=((b"accept", b"text/event-stream"),)
    )
    bodies = body_messages(messages)
    assert b"event: complete" in bodies[-1]["body"] and bodies[-1].get("more_body") is False
    assert all(m["more_body"] for m in bodies[:-1]) and b"event: complete" not in b"".join(
        m["body"] for m in bodies[:-1]
    )
    run_id = dict(messages[0]["headers"])[b"X-Run-Id"].decode()
    assert await get_event_log().subscriber_count(run_id) == 0
    assert metrics.disconnects._value.get() == disconnects  # it ended; the client did not leave early
    assert metrics.open_streams._value.get() == open_streams
    # attaching to the finished run: its replay ends the same way
    again = body_messages(await asgi_messages(f"/runs/{run_id}/events", method="GET"))
    assert again[-1].get("more_body") is False and b"event: complete" in again[-1]["body"]
    assert b"event: start" in b"".join(m["body"] for m in again)


@pytest.mark.django_db(transaction=True)
async def test_an_event_log_outage_mid_stream_ends_it_with_an_error_that_names_the_log(
    workflows, monkeypatch
):
    from nexus_sse.eventlog import get_event_log
    from nexus_sse.exceptions import EventLogUnavailable

    log = get_event_log()
    real = log.wait_after
    calls = []

    async def failing_after_the_first(run_id, seq, timeout):  # noqa: ASYNC109 (wait_after's signature)
        calls.append(seq)
        if len(calls) > 1:
            raise EventLogUnavailable(
                "The event log is unavailable: Redis at redis.example:6379 failed (ConnectionError)."
            )
        return await real(run_id, seq, timeout)

    monkeypatch.setattr(log, "wait_after", failing_after_the_first)
    messages = await asgi_messages(
        "/workflows/slow/execute",
        b'{"inputs": {"seconds": 0.2}}',
        headers=((b"accept", b"text/event-stream"),),
    )
    body = b"".join(m.get("body", b"") for m in body_messages(messages)).decode()
    assert "event: start" in body
    error = json.loads(body.rsplit("event: error\ndata: ", 1)[1].split("\n", 1)[0])
    assert error["error"].startswith("The event log is unavailable: Redis at redis.example:6379 failed")
    assert error["error_type"] == "InternalError" and "Reconnect" in error["error"]
