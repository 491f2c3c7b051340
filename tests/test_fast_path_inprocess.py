"""The ASGI fast path (nexus_sse/asgi.py) in process: which requests it serves, and that it answers
like Django.

Each request goes to the demo application (tests/inprocess.py) once as it is and once with
``FAST_PATH = False`` (everything through Django's handler and middleware). The demo site's
SecurityMiddleware marks every response that went through Django with X-Content-Type-Options.
What needs a real server (idle streams and threads, disconnects, uvicorn's --root-path) is in
tests/test_fast_path.py.
"""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from tests import factories
from tests.inprocess import nexus_settings, request, served_by_django

pytestmark = pytest.mark.django_db(transaction=True)

SSE = {"Accept": "text/event-stream"}
LIMIT = 2048
# as in tests/test_fast_path.py; no workflow cache: set_policy updates rows without a signal
OVERRIDES = {"WORKFLOW_CACHE_SECONDS": 0.0, "MAX_BODY_BYTES": LIMIT, "MAX_STREAMS_PER_USER": 1}


@pytest.fixture(autouse=True)
def overrides(workflows):
    with nexus_settings(**OVERRIDES):
        yield


async def on_both_paths(method: str, target: str, **kwargs):
    """The answers of the fast path and of Django's handler to the same request."""
    fast = await request(method, target, **kwargs)
    with nexus_settings(**OVERRIDES, FAST_PATH=False):
        django = await request(method, target, **kwargs)
    assert not served_by_django(fast) and served_by_django(django)
    return fast, django


async def test_cookie_less_stream_requests_take_the_fast_path():
    stream = await request("POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=SSE)
    assert stream.status == 200 and b"event: complete" in stream.body
    assert not served_by_django(stream)
    assert stream.header("Content-Type") == "text/event-stream; charset=utf-8"
    assert stream.header("X-Accel-Buffering") == "no" and stream.header("Cache-Control") == "no-cache"
    sync = await request("POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}})
    assert sync.status == 200 and not served_by_django(sync)
    eventsource = await request("GET", "/workflows/greet/execute?name=a")
    assert eventsource.status == 200 and not served_by_django(eventsource)


@pytest.mark.parametrize(
    "headers",
    [
        {"Cookie": "anything=1"},  # a session may be in there: Django authenticates
        {"Origin": "https://allowed.example"},  # CORS is django-cors-headers' job
    ],
)
async def test_requests_with_cookies_or_an_origin_go_through_django(headers):
    response = await request(
        "POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=headers
    )
    assert response.status == 200 and served_by_django(response)
    if "Origin" in headers:
        assert response.header("Access-Control-Allow-Origin") == "https://allowed.example"


async def test_other_endpoints_and_methods_go_through_django():
    started = await request(
        "POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}, "mode": "async"}
    )
    assert started.status == 202 and not served_by_django(started)
    assert served_by_django(await request("GET", started.json()["status_url"]))
    assert served_by_django(await request("PUT", "/workflows/greet/execute"))
    assert served_by_django(await request("GET", "/api/workflows/"))


@pytest.mark.parametrize("fast_path", [True, False])
async def test_a_disallowed_host_is_answered_by_django(fast_path):
    with nexus_settings(**OVERRIDES, FAST_PATH=fast_path):
        response = await request(
            "POST", "/workflows/greet/execute", json={"inputs": {}}, headers={"Host": "evil.example"}
        )
    assert response.status == 400 and served_by_django(response)


def without_ids(value):
    """A JSON body with run ids, URLs holding them, timestamps and durations blanked out."""
    if isinstance(value, dict):
        blank = ("run_id", "timestamp", "execution_time", "events_url", "status_url")
        return {k: "*" if k in blank else without_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def answer(response):
    """What must be the same on both paths: status, media type, Retry-After and the body."""
    is_json = response.header("Content-Type") == "application/json"
    body = without_ids(response.json()) if is_json else response.text
    return response.status, response.header("Content-Type"), response.header("Retry-After"), body


NO_RUN = "00000000-0000-0000-0000-000000000000"
REQUESTS = [
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {"name": "Ann"}}}),
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {"name": "Ann"}, "mode": "async"}}),
    ("POST", "/workflows/greet/execute", {"json": {"parameters": {"name": "Ann"}, "mode": "sync"}}),
    ("POST", "/workflows/nope/execute", {"json": {"inputs": {}}}),
    (
        "POST",
        "/workflows/greet/execute",
        {"body": b"{not json", "headers": {"Content-Type": "application/json"}},
    ),
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {}, "extra": 1}}),
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {"name": "x" * 4000}}}),  # > MAX_BODY_BYTES
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {}, "mode": "fast"}}),
    ("GET", "/workflows/greet/execute?mode=sync", {}),
    ("GET", "/workflows/greet/execute", {"headers": {"Last-Event-ID": "garbage"}}),
    ("GET", "/workflows/greet/execute", {"headers": {"Last-Event-ID": f"{NO_RUN}:3"}}),
    ("GET", f"/runs/{NO_RUN}/events", {}),
    ("POST", "/workflows/fail/execute", {"json": {"inputs": {}}}),
    (
        "POST",
        "/workflows/greet/execute",
        {"json": {"inputs": {}}, "headers": {"Authorization": "Token wrong"}},
    ),
]


@pytest.mark.parametrize(("method", "target", "kwargs"), REQUESTS)
async def test_the_fast_path_answers_what_django_answers(method, target, kwargs):
    fast, django = await on_both_paths(method, target, **kwargs)
    assert answer(fast) == answer(django)


async def test_streams_carry_the_same_events_on_both_paths():
    fast, django = await on_both_paths("POST", "/workflows/steps/execute", json={"inputs": {}}, headers=SSE)
    names = [[(e.event, without_ids(e.json())) for e in r.events()] for r in (fast, django)]
    assert names[0] == names[1] and names[0][-1][0] == "complete"


async def test_policies_hold_on_the_fast_path():
    await sync_to_async(factories.set_policy)("greet", access="authenticated")
    token = await sync_to_async(factories.token)(await sync_to_async(factories.user)("ann"))
    anonymous = await request("POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}})
    assert anonymous.status == 401 and not served_by_django(anonymous)
    with_token = await request(
        "POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=token
    )
    assert with_token.status == 200 and not served_by_django(with_token)
    assert with_token.json()["result"] == {"result": "Hello, a!"}


@pytest.mark.parametrize("fast_path", [True, False])
async def test_a_body_in_several_messages_is_read_whole_and_a_large_one_refused(fast_path):
    json_type = {"Content-Type": "application/json"}
    with nexus_settings(**OVERRIDES, FAST_PATH=fast_path):
        ok = await request(
            "POST", "/workflows/greet/execute", parts=[b'{"inputs": ', b'{"name": "Bo"}}'], headers=json_type
        )
        big = await request(
            "POST",
            "/workflows/greet/execute",
            parts=[b'{"inputs": {"name": "', b"x" * 3000, b'"}}'],
            headers=json_type,
        )
    assert served_by_django(ok) is not fast_path
    assert ok.status == 200 and ok.json()["result"] == {"result": "Hello, Bo!"}
    assert big.status == 413 and big.json()["error_type"] == "ValidationError"


# --- how a stream's bytes are split into writes ------------------------------------------------------


def bodies(response):
    return [chunk for chunk, _ in response.chunks if chunk]


async def test_a_new_runs_retry_hint_and_start_event_go_out_in_one_write():
    response = await request("POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=SSE)
    first = bodies(response)[0]
    assert first.startswith(b"retry: 3000\n\nid: ") and b"event: start" in first
    assert b"event: complete" in response.body


async def test_attaching_to_a_quiet_run_sends_the_retry_hint_alone_at_once():
    started = await request(
        "POST", "/workflows/slow/execute", json={"inputs": {"seconds": 5}, "mode": "async"}
    )
    run_id = started.json()["run_id"]
    attached = await request(
        "GET",
        f"/runs/{run_id}/events",
        headers={"Last-Event-ID": f"{run_id}:2"},
        stop=lambda response: bool(bodies(response)),
    )
    assert bodies(attached) == [b"retry: 3000\n\n"]  # while the run is quiet, the hint alone, not held back
    # no run left behind: cancelled, it ends at once
    assert (await request("POST", f"/runs/{run_id}/cancel")).status == 202
    assert (await request("GET", f"/runs/{run_id}/events", deadline=3)).complete


async def test_the_terminal_event_ends_the_body_in_its_own_write_and_the_stream_still_cleans_up():
    from nexus_sse import metrics
    from nexus_sse.eventlog import get_event_log

    disconnects, open_streams = metrics.disconnects._value.get(), metrics.open_streams._value.get()
    # the client reports "disconnect" as soon as the body is complete, as uvicorn does: the
    # stream's cleanup after its last write must not be cancelled by it
    response = await request("POST", "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers=SSE)
    *before, (last, more_body) = response.chunks
    assert b"event: complete" in last and more_body is False
    assert all(more for _, more in before) and b"event: complete" not in b"".join(c for c, _ in before)
    run_id = response.header("X-Run-Id")
    assert await get_event_log().subscriber_count(run_id) == 0
    assert metrics.disconnects._value.get() == disconnects  # it ended; the client did not leave early
    assert metrics.open_streams._value.get() == open_streams
    # attaching to the finished run: its replay ends the same way
    again = await request("GET", f"/runs/{run_id}/events")
    assert again.chunks[-1][1] is False and b"event: complete" in again.chunks[-1][0]
    assert b"event: start" in again.body


async def test_an_event_log_outage_mid_stream_ends_it_with_an_error_that_names_the_log(monkeypatch):
    from nexus_sse.eventlog import get_event_log
    from nexus_sse.exceptions import EventLogUnavailable

    log = get_event_log()
    real = log.wait_after
    calls = []

    async def failing_after_the_first(run_id, seq, wait):
        calls.append(seq)
        if len(calls) > 1:
            raise EventLogUnavailable(
                "The event log is unavailable: Redis at redis.example:6379 failed (ConnectionError)."
            )
        return await real(run_id, seq, wait)

    monkeypatch.setattr(log, "wait_after", failing_after_the_first)
    response = await request(
        "POST", "/workflows/slow/execute", json={"inputs": {"seconds": 0.2}}, headers=SSE
    )
    assert response.complete
    events = response.events()
    assert events[0].event == "start" and events[-1].event == "error"
    error = events[-1].json()
    assert error["error"].startswith("The event log is unavailable: Redis at redis.example:6379 failed")
    assert error["error_type"] == "InternalError" and "Reconnect" in error["error"]
