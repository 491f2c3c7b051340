"""The client's sans-I/O core on its own: what it sends, how it reads answers, when it resumes."""

import httpx
import pytest

from nexus_sse.client import common
from nexus_sse.client.common import Cursor, Options, events_request, execute_request
from nexus_sse.client.core import Follower, Step, outcome
from nexus_sse.client.errors import ConnectionLost
from nexus_sse.client.events import Event
from nexus_sse.exceptions import InternalError, NodeError, NotFound

BASE = "http://nexus"


def starting(**options):
    opts = Options(**options)
    request = execute_request(BASE, "tokens", {"n": 1}, opts)
    return Follower(BASE, request, Cursor(), opts, lambda: {"X-CSRFToken": "t"})


def resuming(retry_ms=3000, **options):
    opts = Options(**options)
    cursor = Cursor(run_id="r1", last_id="r1:3", retry_ms=retry_ms)
    return Follower(BASE, events_request(BASE, cursor, opts), cursor, opts, lambda: {"X-CSRFToken": "t"})


@pytest.fixture
def low_jitter(monkeypatch):
    monkeypatch.setattr(common.random, "uniform", lambda a, b: a)


def test_a_start_is_a_post_that_echoes_the_csrf_cookie():
    request = starting().next_request()
    assert (request.method, request.url) == ("POST", f"{BASE}/workflows/tokens/execute")
    assert request.json == {"inputs": {"n": 1}, "mode": "stream"}
    assert request.headers == {"X-CSRFToken": "t"} and not request.resuming


def test_a_start_with_a_stream_token_is_a_get_without_csrf():
    request = starting(stream_token="s").next_request()
    assert request.method == "GET" and request.headers == {} and request.json is None
    assert request.params == {"inputs": '{"n": 1}', "stream_token": "s"}


def test_a_refused_start_raises_its_typed_error_and_is_never_retried():
    follower = starting()
    assert follower.on_response(503, {"retry-after": "0"}) is Step.REFUSED
    with pytest.raises(InternalError) as info:
        follower.on_refusal(503, {"error": "draining", "error_type": "InternalError"})
    assert info.value.message == "draining" and info.value.extra["http_status"] == 503


def test_no_content_ends_the_stream():
    assert resuming().on_response(204, {}) is Step.END


def test_a_drop_resumes_from_the_last_event_after_the_servers_retry_hint(low_jitter):
    reconnects = []
    follower = starting(on_reconnect=lambda attempt, delay: reconnects.append((attempt, delay)))
    assert follower.on_response(200, {"x-run-id": "r1"}) is Step.EVENTS
    assert follower.on_event("", "", None, 500) is None  # a retry-only block
    event = follower.on_event("token", '{"delta": "a", "run_id": "r1"}', "r1:2", None)
    assert event.delta == "a" and not follower.done
    follower.on_drop(httpx.ReadError("reset"))
    assert follower.delay() == 0.5 and reconnects == [(1, 0.5)]
    request = follower.next_request()
    assert (request.method, request.url) == ("GET", f"{BASE}/runs/r1/events")
    assert request.headers == {"Last-Event-ID": "r1:2"} and request.resuming


def test_events_seen_before_are_not_handed_out_again():
    follower = resuming()
    follower.on_response(200, {})
    assert follower.on_event("token", '{"run_id": "r1"}', "r1:3", None) is None
    assert follower.on_event("complete", '{"result": 1, "run_id": "r1"}', "r1:4", None).seq == 4
    assert follower.done


def test_a_resume_refused_with_429_waits_at_least_its_retry_after(low_jitter):
    follower = resuming(retry_ms=100)
    assert follower.on_response(429, {"retry-after": "2"}) is Step.REFUSED
    follower.on_refusal(429, {"error_type": "RateLimitError"})  # not raised: tried again
    assert follower.delay() == 2.0


def test_a_resume_refused_with_404_raises_not_found():
    follower = resuming()
    follower.on_response(404, {})
    with pytest.raises(NotFound) as info:
        follower.on_refusal(404, {"error": "no such run", "error_type": "NotFound"})
    assert info.value.extra["run_id"] == "r1"


def test_a_drop_before_the_run_id_is_known_is_not_resumed_and_says_why():
    follower = starting()
    follower.on_drop(httpx.ConnectError("refused"))
    with pytest.raises(ConnectionLost, match=r"connection lost \(ConnectError\)"):
        follower.delay()


def test_resumes_stop_after_max_retries(low_jitter):
    follower = resuming(max_retries=2, max_backoff=0.0)
    follower.on_response(200, {})  # then the stream ends without a terminal event
    follower.delay()
    follower.delay()
    with pytest.raises(ConnectionLost, match="the stream ended early") as info:
        follower.delay()
    assert info.value.extra["run_id"] == "r1"


def test_outcome_is_the_result_or_the_runs_typed_error():
    assert outcome(Event("complete", {"result": 7}), "r1") == 7
    with pytest.raises(NodeError) as info:
        outcome(Event("error", {"error": "boom", "error_type": "NodeError"}), "r1")
    assert info.value.extra["run_id"] == "r1"
    with pytest.raises(ConnectionLost, match="ended before the run did"):
        outcome(Event("token", {"delta": "a"}), "r1")
    with pytest.raises(ConnectionLost):
        outcome(None, None)
