"""Bad input: each a clear JSON error with its error_type, never a 500.

In process (tests/inprocess.py), plus the requests whose bytes are unusual on the wire (a NUL in
the path or the query, a long query, a body over the limit) once more over a real socket, under
uvicorn and daphne: the server's HTTP parsing must hand them to us, not answer them itself."""

import json
import uuid

import httpx
import pytest

from tests.inprocess import nexus_settings, request
from tests.live import ServerProcess
from tests.sse_helpers import ACCEPT_SSE as SSE

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 2048
OVERRIDES = {"MAX_BODY_BYTES": LIMIT, "MAX_JSON_DEPTH": 8}


@pytest.fixture(autouse=True)
def overrides(workflows):
    with nexus_settings(**OVERRIDES):
        yield


@pytest.fixture(scope="module", params=["uvicorn", "daphne"])
def small_server(request, django_db_setup):
    with ServerProcess(request.param, overrides=OVERRIDES) as proc:
        yield proc


@pytest.fixture
def client(small_server, workflows):
    with httpx.Client(base_url=small_server.url, timeout=10) as c:
        yield c


def deep(levels):
    value = {}
    for _ in range(levels):
        value = {"a": value}
    return value


JSON = {"Content-Type": "application/json"}

# (method, url, request keywords, status, error_type, path)
BAD_REQUESTS = [
    ("POST", "/workflows/nope/execute", {"json": {}}, 404, "NotFound", None),
    ("GET", "/workflows/nope/execute", {}, 404, "NotFound", None),
    ("GET", "/workflows/no%00pe/execute", {}, 404, "NotFound", None),  # PostgreSQL refuses NUL in a query
    (
        "POST",
        "/workflows/greet/execute",
        {"body": b"{not json", "headers": {"Content-Type": "application/json"}},
        400,
        "ValidationError",
        "body",
    ),
    ("POST", "/workflows/greet/execute", {"json": [1, 2]}, 400, "ValidationError", "body"),
    ("POST", "/workflows/greet/execute", {"json": {"inputs": "Ann"}}, 400, "ValidationError", "inputs"),
    (
        "POST",
        "/workflows/greet/execute",
        {"json": {"inputs": {}, "colour": 1}},
        400,
        "ValidationError",
        "body",
    ),
    (
        "POST",
        "/workflows/greet/execute",
        {"json": {"inputs": {}, "mode": "turbo"}},
        400,
        "ValidationError",
        "mode",
    ),
    ("POST", "/workflows/greet/execute", {"json": {"inputs": {}}}, 400, "ValidationError", "inputs"),
    (
        "POST",
        "/workflows/greet/execute",
        {"json": {"inputs": {"name": "x", "nam": "y"}}},
        400,
        "ValidationError",
        "inputs",
    ),
    (
        "POST",
        "/workflows/greet/execute",
        {"json": {"inputs": {"name": "x", "greet": {"nmae": "y"}}}},
        400,
        "ValidationError",
        "inputs.greet",
    ),
    ("GET", "/workflows/greet/execute?name=x&greet.nmae=y", {}, 400, "ValidationError", "inputs.greet"),
    (
        "POST",
        "/workflows/typed/execute",
        {"json": {"inputs": {"count": "x"}}},
        400,
        "ValidationError",
        "inputs.count",
    ),
    (
        "POST",
        "/workflows/typed/execute",
        {"json": {"inputs": {"count": 1, "flag": "yes"}}},
        400,
        "ValidationError",
        "inputs.flag",
    ),
    ("GET", "/workflows/typed/execute?count=many", {}, 400, "ValidationError", "inputs.count"),
    ("GET", "/workflows/typed/execute?inputs=%7Bbroken", {}, 400, "ValidationError", "inputs"),
    (
        "POST",
        "/workflows/greet/execute",
        {"json": {"inputs": {"name": "x" * LIMIT}}},
        413,
        "ValidationError",
        None,
    ),
    (
        "POST",
        "/workflows/greet/execute",
        {"json": {"inputs": {"name": "x", "greet": deep(12)}}},
        400,
        "ValidationError",
        "body",
    ),
    (
        "POST",
        "/workflows/greet/execute",
        {"headers": {"Last-Event-ID": "garbage"}},
        400,
        "ValidationError",
        "Last-Event-ID",
    ),
    ("GET", "/workflows/greet/execute?lastEventId=abc:1", {}, 400, "ValidationError", "Last-Event-ID"),
    (
        "GET",
        f"/workflows/greet/execute?last_event_id={uuid.uuid4()}:-1",
        {},
        400,
        "ValidationError",
        "Last-Event-ID",
    ),
    ("GET", f"/workflows/greet/execute?lastEventId={uuid.uuid4()}:3", {}, 404, "NotFound", None),
    ("GET", f"/runs/{uuid.uuid4()}", {}, 404, "NotFound", None),
    ("GET", f"/runs/{uuid.uuid4()}/events", {}, 404, "NotFound", None),
    ("POST", f"/runs/{uuid.uuid4()}/cancel", {}, 404, "NotFound", None),
    ("GET", "/runs/not-a-uuid", {}, 404, "NotFound", None),
    ("GET", "/runs/not-a-uuid/events", {}, 404, "NotFound", None),
    ("POST", "/runs/not-a-uuid/cancel", {}, 404, "NotFound", None),
    ("GET", f"/runs/{uuid.uuid4()}x", {}, 404, "NotFound", None),
]

# NaN/Infinity and lone surrogates cannot be sent on as JSON/UTF-8, PostgreSQL's jsonb refuses
# NUL: each must be a 400, not a 500 or a run that fails at its end (huge ints: tests/test_payload.py)
NON_JSON_VALUES = [
    ("POST", "/workflows/typed/execute", b'{"inputs": {"count": 1, "ratio": NaN}}'),
    ("POST", "/workflows/typed/execute", b'{"inputs": {"count": 1, "ratio": -Infinity}}'),
    ("POST", "/workflows/typed/execute", b'{"inputs": {"count": 1, "ratio": 1e400}}'),
    ("POST", "/workflows/typed/execute", b'{"inputs": {"count": 1, "name": "a\\ud800b"}}'),
    ("POST", "/workflows/typed/execute", b'{"inputs": {"count": 1, "name": "a\\u0000b"}}'),
    ("POST", "/workflows/typed/execute", b'{"inputs": {"count": 1, "tags": [{"\\u0000": 1}]}}'),
    ("GET", "/workflows/typed/execute?count=1&ratio=nan", None),
    ("GET", "/workflows/typed/execute?count=1&ratio=1e400", None),
    ("GET", "/workflows/typed/execute?count=1&name=a%00b", None),
    ("GET", "/workflows/typed/execute?count=" + "9" * 5000, None),
    ("GET", "/workflows/typed/execute?inputs=%7B%22count%22%3A1%2C%22ratio%22%3ANaN%7D", None),
]


def assert_clear_error(content_type, text, error_type, path):
    assert content_type == "application/json", text
    body = json.loads(text)
    assert body["error_type"] == error_type and body["error"]
    assert body.get("path") == path
    assert "Traceback" not in text


def assert_refused_before_the_run(status, content_type, body):
    assert status == 400, body
    assert content_type == "application/json"
    assert body["error_type"] == "ValidationError"
    assert body["path"] in ("body", "inputs") or body["path"].startswith("inputs.")


@pytest.mark.parametrize(("method", "url", "kwargs", "status", "error_type", "path"), BAD_REQUESTS)
async def test_bad_requests_get_clear_json_errors(method, url, kwargs, status, error_type, path):
    response = await request(method, url, **kwargs)
    assert response.status == status, response.text
    assert_clear_error(response.header("Content-Type"), response.text, error_type, path)


@pytest.mark.parametrize(("method", "url", "body"), NON_JSON_VALUES)
async def test_values_json_cannot_carry_are_refused_before_the_run(method, url, body):
    response = await request(method, url, body=body, headers=JSON if body else {})
    assert_refused_before_the_run(response.status, response.header("Content-Type"), response.json())


# --- over a real socket: bytes a server's HTTP parser could answer itself -------------------------

UNUSUAL_ON_THE_WIRE = ("%00", "9" * 5000, "x" * LIMIT)


def unusual_on_the_wire(url, kwargs):
    return any(mark in url or mark in json.dumps(kwargs.get("json")) for mark in UNUSUAL_ON_THE_WIRE)


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "error_type", "path"),
    [case for case in BAD_REQUESTS if unusual_on_the_wire(case[1], case[2])],
)
def test_unusual_bad_requests_get_clear_json_errors_over_a_real_socket(
    client, method, url, kwargs, status, error_type, path
):
    response = client.request(method, url, **kwargs)
    assert response.status_code == status, response.text
    assert_clear_error(response.headers["content-type"], response.text, error_type, path)


@pytest.mark.parametrize(
    ("method", "url", "body"), [case for case in NON_JSON_VALUES if unusual_on_the_wire(case[1], {})]
)
def test_unusual_values_json_cannot_carry_are_refused_over_a_real_socket(client, method, url, body):
    response = client.request(method, url, content=body, headers=JSON if body else {})
    assert_refused_before_the_run(response.status_code, response.headers["content-type"], response.json())


# --- in process -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "path"),
    [
        ({"workflow": "x" * LIMIT}, 413, None),
        ({"workflow": "greet", "extra": deep(12)}, 400, "body"),
        ({"workflow": "gr\u0000eet"}, 400, "body"),
        ({"workflow": "greet", "extra": "\ud800"}, 400, "body"),
    ],
)
async def test_the_rest_api_applies_the_same_body_limits(body, status, path):
    content = json.dumps(body).encode()  # ensure_ascii: the NUL and the surrogate travel as \u escapes
    response = await request("POST", "/api/stream-tokens/", body=content, headers=JSON)
    assert response.status == status, response.text
    assert response.header("Content-Type") == "application/json"
    assert response.json()["error_type"] == "ValidationError" and response.json().get("path") == path


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_on_execute_get_405_with_allow(method):
    response = await request(method, "/workflows/greet/execute")
    assert response.status == 405
    assert response.header("Allow") == "GET, POST" and response.json()["error_type"] == "ValidationError"


async def test_resume_cursor_of_another_workflow_or_past_the_end_is_refused():
    run = await request("POST", "/workflows/greet/execute", json={"inputs": {"name": "x"}}, headers=SSE)
    events = run.events()
    run_id = events[0].json()["run_id"]
    other = await request("POST", "/workflows/chat/execute", headers={"Last-Event-ID": f"{run_id}:1"})
    assert other.status == 404 and other.json()["error_type"] == "NotFound"
    ahead = await request(
        "GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": f"{run_id}:{len(events) + 5}"}
    )
    assert ahead.status == 400 and ahead.json()["path"] == "Last-Event-ID"
    foreign = await request("GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": f"{uuid.uuid4()}:1"})
    assert foreign.status == 400
