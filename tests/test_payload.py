"""Reading requests: Last-Event-ID, JSON bodies and their limits, the execute body, query-string inputs."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import RequestFactory, override_settings

import nexus_sse
from nexus_sse import payload
from nexus_sse.exceptions import PayloadTooLarge, ValidationError
from nexus_sse.workflows.builder import WorkflowBuilder
from nexus_sse.workflows.schema import validate_inputs

RUN = "3f2c9a4e-5b6d-41d1-9e2f-0a1b2c3d4e5f"
rf = RequestFactory()


@nexus_sse.register_function("tests.payload.typed")
def typed(
    count: int,
    ratio: float = 0.5,
    flag: bool = False,
    tags: list = (),
    meta: dict | None = None,
    name: str = "x",
    anything=None,
    limit: int | None = None,
) -> dict:
    return {}


def schema() -> dict:
    wf = WorkflowBuilder()
    wf.add_node("FunctionNode", "fn", {"function": "tests.payload.typed"})
    return wf.build().input_schema


# --- Last-Event-ID -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"{RUN}:0", (RUN, 0)),
        (f"{RUN}:17", (RUN, 17)),
        (f"  {RUN}:3 \n", (RUN, 3)),  # surrounding whitespace is tolerated
        (f"{RUN.upper()}:5", (RUN, 5)),  # the run id comes back in canonical form
        (f"{RUN.replace('-', '')}:5", (RUN, 5)),
    ],
)
def test_parse_event_id_reads_run_and_seq(raw, expected):
    assert payload.parse_event_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        RUN,
        f"{RUN}:-1",
        f"{RUN}:x",
        "notuuid:3",
        f"{RUN}:",
        ":3",
        f"{RUN}:+3",
        f"{RUN}: 3",
        f"{RUN}:3.0",
        f"{RUN}:1e3",
        f"{RUN}:3:4",
        "3",
        f"{uuid.uuid4()}{RUN}:1",
    ],
)
def test_parse_event_id_refuses_garbage_with_a_validation_error(raw):
    with pytest.raises(ValidationError) as info:
        payload.parse_event_id(raw)
    assert info.value.path == "Last-Event-ID"
    assert info.value.status == 400
    assert "'<run_id>:<seq>'" in info.value.message


@pytest.mark.parametrize(
    ("url", "headers", "expected"),
    [
        ("/x", {}, None),
        ("/x", {"Last-Event-ID": ""}, None),
        ("/x", {"Last-Event-ID": f"{RUN}:4"}, (RUN, 4)),
        (f"/x?lastEventId={RUN}:5", {}, (RUN, 5)),
        (f"/x?last_event_id={RUN}:6", {}, (RUN, 6)),
        (f"/x?lastEventId={RUN}:5", {"Last-Event-ID": f"{RUN}:4"}, (RUN, 4)),  # the header wins
    ],
)
def test_last_event_id_comes_from_the_header_or_the_query(url, headers, expected):
    assert payload.last_event_id(rf.get(url, headers=headers)) == expected


def test_a_garbage_last_event_id_header_is_a_validation_error():
    with pytest.raises(ValidationError):
        payload.last_event_id(rf.get("/x", headers={"Last-Event-ID": "garbage"}))


# --- JSON depth and bodies -----------------------------------------------------------------------


def nested(depth: int, kind=list):
    value = 1
    for _ in range(depth):
        value = [value] if kind is list else {"k": value}
    return value


@pytest.mark.parametrize("kind", [list, dict])
def test_check_depth_allows_exactly_the_limit(kind):
    payload.check_depth(nested(3, kind), 3)
    with pytest.raises(ValidationError, match="deeper than 3 levels") as info:
        payload.check_depth(nested(4, kind), 3)
    assert info.value.path == "body"


def test_check_depth_ignores_scalars_and_width():
    payload.check_depth("text", 1)
    payload.check_depth(None, 1)
    payload.check_depth({str(i): i for i in range(10_000)}, 1)
    payload.check_depth([[1], {"a": [2]}, [[3]]], 3)
    with pytest.raises(ValidationError):
        payload.check_depth([[1], {"a": [2]}, [[[3]]]], 3)


def post(body: bytes | str, content_type: str = "application/json", **extra):
    return rf.generic("POST", "/x", body, content_type=content_type, **extra)


def test_read_json_body_parses_json_and_treats_an_empty_body_as_none():
    assert payload.read_json_body(post(b'{"inputs": {"a": 1}}')) == {"inputs": {"a": 1}}
    assert payload.read_json_body(post(b"")) is None
    assert payload.read_json_body(post(b"  \n")) is None
    # curl -d sends a form content type; the body is still our JSON
    assert payload.read_json_body(post(b"[1]", "application/x-www-form-urlencoded")) == [1]


@pytest.mark.parametrize(
    ("body", "content_type", "message", "path"),
    [
        (b"{not json", "application/json", "malformed JSON", "body"),
        (b"\xff\xfe", "application/json", "malformed JSON", "body"),
        (b"<a/>", "application/xml", "unsupported Content-Type", None),
        (b"--b\r\n", "multipart/form-data; boundary=b", "unsupported Content-Type", None),
        (b"[" + b"9" * 5000 + b"]", "application/json", "malformed JSON", "body"),  # past int's 4300 digits
        (b'{"a": [1, NaN]}', "application/json", "not a JSON number", "body"),
        (b'{"a": Infinity}', "application/json", "not a JSON number", "body"),
        (b'{"a": -1e999}', "application/json", "not a JSON number", "body"),
        (b'["\\udc00"]', "application/json", "lone surrogate", "body"),
        (b'{"\\ud83d": 1}', "application/json", "lone surrogate", "body"),
        (b'{"a": "x\\u0000"}', "application/json", "NUL", "body"),
        (b'{"a\\u0000": 1}', "application/json", "NUL", "body"),
    ],
)
def test_read_json_body_refuses_what_is_not_json(body, content_type, message, path):
    with pytest.raises(ValidationError, match=message) as info:
        payload.read_json_body(post(body, content_type))
    assert info.value.path == path


def test_read_json_body_enforces_the_size_and_depth_settings():
    with override_settings(NEXUS_SSE={"MAX_BODY_BYTES": 10, "MAX_JSON_DEPTH": 2}):
        assert payload.read_json_body(post(b"[[1]]")) == [[1]]
        with pytest.raises(ValidationError, match="deeper than 2"):
            payload.read_json_body(post(b"[[[1]]]"))
        with pytest.raises(PayloadTooLarge) as info:
            payload.read_json_body(post(b'{"a": "12345"}'))
        assert info.value.status == 413
        # a declared length over the limit is refused before reading
        with pytest.raises(PayloadTooLarge):
            payload.read_json_body(post(b"{}", CONTENT_LENGTH="999999"))
    with pytest.raises(ValidationError, match="Content-Length"):
        payload.read_json_body(post(b"{}", CONTENT_LENGTH="lots"))


# --- the execute body ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (None, ({}, None)),
        ({}, ({}, None)),
        ({"inputs": {"a": 1}}, ({"a": 1}, None)),
        ({"parameters": {"a": 1}}, ({"a": 1}, None)),  # Nexus' legacy name
        ({"inputs": None}, ({}, None)),
        ({"inputs": {"a": 1}, "mode": "stream"}, ({"a": 1}, "stream")),
        ({"mode": "sync"}, ({}, "sync")),
        ({"parameters": {}, "mode": "async"}, ({}, "async")),
    ],
)
def test_execute_body_reads_inputs_and_mode(data, expected):
    assert payload.execute_body(data) == expected


@pytest.mark.parametrize(
    ("data", "message", "path"),
    [
        ({"inputs": {"a": 1}, "parameters": {"a": 1}}, "either 'inputs' or 'parameters'", "body"),
        ({"inputs": {}, "mode": "fast"}, "'mode' must be one of ['sync', 'async', 'stream']", "mode"),
        ({"mode": "STREAM"}, "'mode' must be one of", "mode"),
        ({"inputs": {}, "input": {}}, "unknown body fields ['input']", "body"),
        ({"message": "hi"}, "unknown body fields ['message']", "body"),
        ({"inputs": [1]}, "'inputs' must be a JSON object", "inputs"),
        ({"parameters": "a=1"}, "'inputs' must be a JSON object", "inputs"),
        ([{"inputs": {}}], "must be a JSON object", "body"),
        ("inputs", "must be a JSON object", "body"),
    ],
)
def test_execute_body_refuses_bad_bodies(data, message, path):
    with pytest.raises(ValidationError) as info:
        payload.execute_body(data)
    assert message in info.value.message
    assert info.value.path == path


# --- query-string inputs -------------------------------------------------------------------------


def query(qs: str) -> dict:
    return payload.query_inputs(rf.get(f"/x?{qs}"), schema())


@pytest.mark.parametrize(
    ("qs", "expected"),
    [
        ("count=3", {"count": 3}),
        ("count=-3&ratio=0.25", {"count": -3, "ratio": 0.25}),
        ("ratio=2", {"ratio": 2.0}),
        ("flag=true", {"flag": True}),
        ("flag=Yes", {"flag": True}),
        ("flag=1", {"flag": True}),
        ("flag=off", {"flag": False}),
        ("flag=0", {"flag": False}),
        ("tags=a&tags=b", {"tags": ["a", "b"]}),
        ("tags=a", {"tags": ["a"]}),
        ("tags=%5B1%2C%202%5D", {"tags": [1, 2]}),  # tags=[1, 2]
        ("meta=%7B%22k%22%3A%201%7D", {"meta": {"k": 1}}),  # meta={"k": 1}
        ("name=42", {"name": "42"}),  # a string stays a string
        ("limit=3&fn.limit=4", {"limit": 3, "fn": {"limit": 4}}),  # int | None: converted as an integer
        ("anything=7", {"anything": "7"}),  # untyped: left as text
        ("count=1&count=2", {"count": 2}),  # the last value of a scalar wins
        ("fn.count=3&fn.flag=no", {"fn": {"count": 3, "flag": False}}),  # node-scoped
        ("colour=red", {"colour": "red"}),  # unknown inputs pass through; validation refuses them
        ("mode=stream&lastEventId=x&last_event_id=y&stream_token=t&count=1", {"count": 1}),  # reserved
        ("inputs=%7B%22count%22%3A%205%2C%20%22flag%22%3A%20true%7D", {"count": 5, "flag": True}),
        ("inputs=%7B%7D&count=3", {}),  # ?inputs= wins over plain parameters
    ],
)
def test_query_inputs_converts_values_by_the_schema_types(qs, expected):
    assert query(qs) == expected


@pytest.mark.parametrize(
    ("qs", "path", "message"),
    [
        ("count=three", "inputs.count", "must be a integer"),
        ("count=1.5", "inputs.count", "must be a integer"),
        ("ratio=half", "inputs.ratio", "must be a number"),
        ("flag=maybe", "inputs.flag", "must be true or false"),
        ("meta=%7Bbad", "inputs.meta", "must be JSON"),
        ("tags=%5Bbad", "inputs.tags", "must be JSON"),
        ("fn.count=x", "inputs.fn.count", "must be a integer"),
        ("inputs=%7Bbad", "inputs", "not valid JSON"),
        ("inputs=%5B1%5D", "inputs", "must be a JSON object"),
        ("ratio=nan", "inputs", "not a JSON number"),
        ("ratio=-inf", "inputs", "not a JSON number"),
        ("name=a%00b", "inputs", "NUL"),
        ("meta=%7B%22k%22%3A%20NaN%7D", "inputs", "not a JSON number"),
        ("inputs=%7B%22k%22%3A%20%22%5Cud800%22%7D", "inputs", "lone surrogate"),
        ("inputs=%5B" + "%5B" * 100_000 + "%5D" * 100_000 + "%5D", "inputs", "nested too deeply"),
    ],
)
def test_query_inputs_refuses_values_of_the_wrong_type(qs, path, message):
    with pytest.raises(ValidationError) as info:
        query(qs)
    assert info.value.path == path
    assert message in info.value.message


def test_query_inputs_json_respects_the_depth_limit():
    deep = json.dumps({"meta": nested(5)})
    with (
        override_settings(NEXUS_SSE={"MAX_JSON_DEPTH": 4}),
        pytest.raises(ValidationError, match="deeper than 4"),
    ):
        payload.query_inputs(rf.get("/x", {"inputs": deep}), schema())


def test_converted_query_inputs_pass_validation():
    inputs = query("count=3&ratio=1&flag=on&tags=x&name=n&fn.name=m")
    validate_inputs(schema(), inputs)
    with pytest.raises(ValidationError) as info:
        validate_inputs(schema(), query("count=3&colour=red"))
    assert info.value.path == "inputs" and "unknown input" in info.value.message
