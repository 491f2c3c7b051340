"""The SSE encoder, byte for byte, and the parser that reads it back."""

import pytest

from nexus_sse import sse
from nexus_sse.eventlog.base import LogEvent


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"event": "start", "data": {"a": 1}}, b'event: start\ndata: {"a": 1}\n\n'),
        (
            {"event": "token", "data": {"delta": "x"}, "id": "r:3"},
            b'id: r:3\nevent: token\ndata: {"delta": "x"}\n\n',
        ),
        ({"data": "plain"}, b"data: plain\n\n"),
        ({"retry": 3000}, b"retry: 3000\n\n"),
        ({"event": "e", "data": "a\nb", "multiline": True}, b"event: e\ndata: a\ndata: b\n\n"),
        ({"data": "a\r\nb\rc", "multiline": True}, b"data: a\ndata: b\ndata: c\n\n"),
        ({"data": {"t": "line1\nline2"}}, b'data: {"t": "line1\\nline2"}\n\n'),
        ({"data": {"t": "caf\u00e9 \u2603"}}, 'data: {"t": "caf\u00e9 \u2603"}\n\n'.encode()),
        ({"event": "x", "id": "", "data": ""}, b"id: \nevent: x\ndata: \n\n"),
    ],
)
def test_encode_is_byte_exact(kwargs, expected):
    assert sse.encode(**kwargs) == expected


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\r\nb", "\n"])
def test_event_names_and_ids_with_line_breaks_are_refused(bad):
    with pytest.raises(sse.EncodingError):
        sse.encode(event=bad, data={})
    with pytest.raises(sse.EncodingError):
        sse.encode(event="ok", data={}, id=bad)
    with pytest.raises(sse.EncodingError):
        sse.comment(bad)


@pytest.mark.parametrize("bad", [-1, 1.5, "3000", True])
def test_invalid_retry_is_refused(bad):
    with pytest.raises(sse.EncodingError):
        sse.encode(retry=bad)


def test_multiline_string_needs_explicit_opt_in():
    with pytest.raises(sse.EncodingError):
        sse.encode(data="two\nlines")


def test_comments_and_keepalive_bytes():
    assert sse.comment("keepalive") == b":keepalive\n\n" == sse.KEEPALIVE
    assert sse.comment() == b":\n\n"
    assert sse.retry(1500) == b"retry: 1500\n\n"


def test_log_event_wire_uses_run_scoped_ids():
    event = LogEvent("3f2c-41d1", 7, "progress", '{"percent": 50}')
    assert event.wire == b'id: 3f2c-41d1:7\nevent: progress\ndata: {"percent": 50}\n\n'
    assert event.id == "3f2c-41d1:7" and event.data == {"percent": 50}


SAMPLE = (
    sse.retry(3000)
    + sse.encode("start", {"run_id": "r"}, id="r:1")
    + sse.KEEPALIVE
    + sse.encode("token", "a\nb", id="r:2", multiline=True)
    + b"data: x\r\n\r\n"
    + sse.encode("complete", {"result": {"response": "\u00e9"}}, id="r:3")
)


def test_parser_round_trips_what_the_encoder_writes():
    events = sse.parse(SAMPLE)
    assert [(e.event, e.id) for e in events] == [
        ("message", None),
        ("start", "r:1"),
        ("message", None),
        ("token", "r:2"),
        ("message", None),
        ("complete", "r:3"),
    ]
    assert events[0].retry == 3000
    assert events[2].comments == ["keepalive"]
    assert events[3].data == "a\nb"
    assert events[4].data == "x"  # CRLF line ends
    assert events[5].json() == {"result": {"response": "\u00e9"}}


def test_parser_gives_the_same_events_for_every_chunk_split():
    text = SAMPLE.decode()
    whole = sse.parse(text)
    for cut in range(1, len(text)):
        assert sse.parse([text[:cut], text[cut:]]) == whole, cut
    assert sse.parse(list(text)) == whole  # one character at a time
