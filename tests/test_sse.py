"""The SSE wire format: the encoder byte for byte, and a parser that reads any chunking of it back."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest

from nexus_sse import sse
from nexus_sse.eventlog.base import LogEvent

RUN = "3f2c9a4e-5b6d-41d1-9e2f-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        # field order is always id, event, retry, data
        (
            ("start", {"a": 1}),
            {"id": f"{RUN}:1"},
            f'id: {RUN}:1\nevent: start\ndata: {{"a": 1}}\n\n'.encode(),
        ),
        (("e", "x"), {"id": "7", "retry": 10}, b"id: 7\nevent: e\nretry: 10\ndata: x\n\n"),
        ((), {"retry": 3000}, b"retry: 3000\n\n"),
        ((), {"retry": 0}, b"retry: 0\n\n"),
        ((), {"id": "only"}, b"id: only\n\n"),
        (("only",), {}, b"event: only\n\n"),
        # the fields by keyword; an empty id is still sent (it resets the client's last event id)
        ((), {"event": "start", "data": {"a": 1}}, b'event: start\ndata: {"a": 1}\n\n'),
        ((), {"event": "x", "id": "", "data": ""}, b"id: \nevent: x\ndata: \n\n"),
        # dict / list / scalar data is JSON on one line; str data goes out as is
        ((None, {"b": [1, 2], "n": None, "t": True}), {}, b'data: {"b": [1, 2], "n": null, "t": true}\n\n'),
        ((None, [1, "x"]), {}, b'data: [1, "x"]\n\n'),
        ((None, 0), {}, b"data: 0\n\n"),
        ((None, False), {}, b"data: false\n\n"),
        ((None, "plain text"), {}, b"data: plain text\n\n"),
        ((None, ""), {}, b"data: \n\n"),
        ((None, "  a: b"), {}, b"data:   a: b\n\n"),
        # a line break inside a JSON string is escaped, so it stays one data line
        ((None, {"t": "l1\nl2\r"}), {}, b'data: {"t": "l1\\nl2\\r"}\n\n'),
        # non-JSON types fall back to str()
        ((None, {"when": datetime.date(2024, 5, 1)}), {}, b'data: {"when": "2024-05-01"}\n\n'),
        ((None, {"id": uuid.UUID(RUN)}), {}, f'data: {{"id": "{RUN}"}}\n\n'.encode()),
        # multi-line str data: LF, CRLF, CR and mixes each become one data: line per line
        (("e", "a\nb"), {"multiline": True}, b"event: e\ndata: a\ndata: b\n\n"),
        ((None, "a\r\nb"), {"multiline": True}, b"data: a\ndata: b\n\n"),
        ((None, "a\rb"), {"multiline": True}, b"data: a\ndata: b\n\n"),
        ((None, "a\r\n\rb\nc"), {"multiline": True}, b"data: a\ndata: \ndata: b\ndata: c\n\n"),
        ((), {"data": "a\r\nb\rc", "multiline": True}, b"data: a\ndata: b\ndata: c\n\n"),
        ((None, "end\n"), {"multiline": True}, b"data: end\ndata: \n\n"),
        ((None, "single"), {"multiline": True}, b"data: single\n\n"),
        # unicode is sent as UTF-8, not \u escapes; U+2028 is not an SSE line break
        ((None, {"t": "caf\u00e9 \u2603 \U0001f600"}), {}, 'data: {"t": "café ☃ 😀"}\n\n'.encode()),
        ((None, {"t": "a\u2028b\x85c"}), {}, b'data: {"t": "a\xe2\x80\xa8b\xc2\x85c"}\n\n'),
        (("\u00e9v\u00e9nement", "x"), {"id": "\u2603"}, "id: ☃\nevent: événement\ndata: x\n\n".encode()),
    ],
)
def test_encode_is_byte_exact(args, kwargs, expected):
    assert sse.encode(*args, **kwargs) == expected


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\r\nb", "\n", "\r", "trailing\n"])
@pytest.mark.parametrize("field", ["event", "id"])
def test_line_breaks_in_event_names_and_ids_are_refused(field, bad):
    with pytest.raises(sse.EncodingError, match=f"SSE {field} must not contain CR or LF"):
        sse.encode(**{"event": "ok", "data": {}, field: bad})


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\r\nb", "\r\n", "\n"])
def test_line_breaks_in_comments_are_refused(bad):
    with pytest.raises(sse.EncodingError):
        sse.comment(bad)


@pytest.mark.parametrize("bad", [-1, 1.5, "3000", True, False, [3000]])
def test_invalid_retry_is_refused(bad):
    with pytest.raises(sse.EncodingError, match="retry must be a non-negative int"):
        sse.encode(retry=bad)
    with pytest.raises(sse.EncodingError):
        sse.retry(bad)


def test_a_multiline_string_needs_explicit_opt_in():
    for text in ("two\nlines", "two\rlines", "two\r\nlines"):
        with pytest.raises(sse.EncodingError, match="multiline=True"):
            sse.encode("e", text)
        with pytest.raises(sse.EncodingError, match="multiline=True"):
            sse.encode(data=text)  # data alone, without an event name


def test_an_event_without_fields_is_refused():
    with pytest.raises(sse.EncodingError, match="at least one field"):
        sse.encode()


def test_comments_keepalive_and_retry_bytes():
    assert sse.comment("keepalive") == b":keepalive\n\n"
    assert sse.KEEPALIVE == b":keepalive\n\n"
    assert sse.comment() == b":\n\n"
    assert sse.comment(" padded \u2603") == ": padded ☃\n\n".encode()
    assert sse.retry(1500) == b"retry: 1500\n\n"


def test_log_event_wire_is_the_encoder_output_with_a_run_scoped_id():
    event = LogEvent(RUN, 7, "progress", '{"percent": 50, "t": "\u00e9"}')
    assert event.id == f"{RUN}:7"
    assert event.wire == f'id: {RUN}:7\nevent: progress\ndata: {{"percent": 50, "t": "é"}}\n\n'.encode()
    assert event.wire == sse.encode("progress", event.data_json, id=event.id)
    assert event.data == {"percent": 50, "t": "\u00e9"}
    assert event.wire is event.wire  # built once, shared by every subscriber
    (parsed,) = sse.parse(event.wire)
    assert (parsed.id, parsed.event, parsed.json()) == (f"{RUN}:7", "progress", event.data)
    assert not event.terminal and LogEvent(RUN, 8, "complete", "{}").terminal


# A stream with every feature: retry, ids, comments, multi-line data, unicode, and the three line ends.
SAMPLE = (
    sse.retry(3000)
    + sse.encode("start", {"run_id": RUN}, id=f"{RUN}:1")
    + sse.KEEPALIVE
    + sse.encode("token", "a\nb", id=f"{RUN}:2", multiline=True)
    + b"event: crlf\r\ndata: x\r\n\r\n"
    + b"event: cr\rdata: y\r\r"
    + sse.encode("complete", {"result": {"response": "caf\u00e9 \u2603"}}, id=f"{RUN}:3")
)

SAMPLE_EVENTS = [
    ("message", "", None, 3000, []),
    ("start", json.dumps({"run_id": RUN}), f"{RUN}:1", None, []),
    ("message", "", None, None, ["keepalive"]),
    ("token", "a\nb", f"{RUN}:2", None, []),
    ("crlf", "x", None, None, []),
    ("cr", "y", None, None, []),
    ("complete", '{"result": {"response": "café ☃"}}', f"{RUN}:3", None, []),
]


def fields(events):
    return [(e.event, e.data, e.id, e.retry, e.comments) for e in events]


def test_parser_reads_a_whole_stream():
    assert fields(sse.parse(SAMPLE)) == SAMPLE_EVENTS
    assert fields(sse.parse(SAMPLE.decode())) == SAMPLE_EVENTS


def test_parser_gives_the_same_events_for_every_split_of_the_bytes():
    # includes splits inside CRLF and inside multi-byte UTF-8 characters
    for cut in range(1, len(SAMPLE)):
        assert fields(sse.parse([SAMPLE[:cut], SAMPLE[cut:]])) == SAMPLE_EVENTS, cut


def test_parser_gives_the_same_events_for_every_split_of_the_text():
    text = SAMPLE.decode()
    whole = sse.parse(text)
    for cut in range(1, len(text)):
        # the whole events compare equal, not only the fields listed in SAMPLE_EVENTS
        assert sse.parse([text[:cut], text[cut:]]) == whole, cut
    assert fields(whole) == SAMPLE_EVENTS
    assert sse.parse(list(text)) == whole  # one character at a time


def test_parser_reads_one_byte_at_a_time():
    assert fields(sse.parse([SAMPLE[i : i + 1] for i in range(len(SAMPLE))])) == SAMPLE_EVENTS


def test_crlf_split_across_chunks_is_one_line_end():
    parser = sse.SSEParser()
    assert parser.feed("data: a\r") == []
    # had the CR been taken as a line end, this LF would be a blank line and dispatch "a" alone
    assert parser.feed("\ndata: b\r") == []
    (event,) = parser.feed("\n\r\n")
    assert event.data == "a\nb"


def test_a_cr_at_the_very_end_of_a_stream_ends_the_line():
    assert fields(sse.parse(b"data: z\r\r")) == [("message", "z", None, None, [])]


def test_events_are_dispatched_as_soon_as_their_blank_line_arrives():
    parser = sse.SSEParser()
    assert parser.feed("event: a\ndata: 1\n") == []
    assert [e.event for e in parser.feed("\nevent: b\n")] == ["a"]
    assert [e.event for e in parser.feed("data: 2\n\n")] == ["b"]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        ("data\n\n", [("message", "", None, None, [])]),  # a field name alone: empty value
        ("data:x\n\n", [("message", "x", None, None, [])]),  # the space after the colon is optional
        ("data:  x\n\n", [("message", " x", None, None, [])]),  # ... and only one is removed
        ("data: a\ndata: b\n\n", [("message", "a\nb", None, None, [])]),
        ("colour: red\ndata: x\n\n", [("message", "x", None, None, [])]),  # unknown fields are ignored
        ("retry: soon\ndata: x\n\n", [("message", "x", None, None, [])]),
        ("retry: \u00b2\ndata: x\n\n", [("message", "x", None, None, [])]),  # "²".isdigit() but not ASCII
        ("id: a\0b\ndata: x\n\n", [("message", "x", None, None, [])]),  # ids with NUL are ignored
        (": one\n:two\ndata: x\n\n", [("message", "x", None, None, [" one", "two"])]),
        ("\n\n\n", []),  # blank lines alone are no events
        ("data: never finished\n", []),  # an event without its blank line is dropped at the end
    ],
)
def test_parser_follows_the_field_rules(stream, expected):
    assert fields(sse.parse(stream)) == expected


@pytest.mark.parametrize(
    ("args", "kwargs", "data"),
    [
        (("start", {"run_id": RUN, "n": [1, 2.5, None]}), {"id": f"{RUN}:1"}, None),
        (("token", "line one\r\nline two\rthree\n"), {"multiline": True}, "line one\nline two\nthree\n"),
        (("unicode", {"t": "\u00e9\u2603\U0001f600\u2028"}), {"id": "\u2603:2"}, None),
        (("x", ""), {"retry": 250}, None),
        (("colon", "a: b:c"), {}, None),
    ],
)
def test_parse_of_encode_round_trips(args, kwargs, data):
    (event,) = sse.parse(sse.encode(*args, **kwargs))
    name, value = args
    assert event.event == name
    assert event.id == kwargs.get("id")
    assert event.retry == kwargs.get("retry")
    if isinstance(value, str):
        assert event.data == (data if data is not None else value)
    else:
        assert event.json() == value


def test_comments_are_kept_on_the_event_they_precede():
    events = sse.parse(sse.KEEPALIVE + b": hi\n" + sse.encode("e", {"a": 1}))
    assert fields(events) == [
        ("message", "", None, None, ["keepalive"]),
        ("e", '{"a": 1}', None, None, [" hi"]),
    ]
