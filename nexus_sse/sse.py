"""The Server-Sent Events wire format: encode events, parse streams. No Django here.

Encoding follows the WHATWG "server-sent events" grammar: a field per line, an empty line ends an event.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

KEEPALIVE = b":keepalive\n\n"


class LastChunk(bytes):
    """Bytes that end a stream (its terminal event): a server may end the body in the same write."""

    __slots__ = ()


class EncodingError(ValueError):
    """A field cannot be put on the wire (it would break the framing)."""


def _check_field(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise EncodingError(f"SSE {name} must not contain CR or LF: {value!r}")
    return value


#: one encoder for every event: json.dumps() with options builds a new one per call
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)
#: and below it, the C encoder the json module builds per call, built once (its own dumps does the
#: same for default options). No cycle check (markers=None): a cyclic value hits the recursion
#: limit instead, still an error; event data comes from JSON or node outputs, which are trees.
_C_ENCODER: Callable[[Any, int], Iterable[str]] | None
try:
    from _json import make_encoder  # what json.encoder.c_make_encoder is
except ImportError:  # a Python without the C accelerator: the JSONEncoder above
    _C_ENCODER = None
else:
    _C_ENCODER = make_encoder(None, str, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)


def dumps(data: Any) -> str:
    """JSON-encode event data on one line (json escapes CR/LF inside strings)."""
    if _C_ENCODER is None:
        return _ENCODER.encode(data)
    return "".join(_C_ENCODER(data, 0))


def encode(
    event: str | None = None,
    data: Any = None,
    *,
    id: str | None = None,
    retry: int | None = None,
    multiline: bool = False,
) -> bytes:
    """Encode one event.

    ``data`` that is not a ``str`` is JSON-encoded. A ``str`` is sent as is; with ``multiline=True``
    its lines become several ``data:`` lines (which the client joins with LF), otherwise a str with a
    line break is refused.
    """
    parts: list[str] = []
    if id is not None:
        parts.append(f"id: {_check_field('id', id)}\n")
    if event is not None:
        parts.append(f"event: {_check_field('event', event)}\n")
    if retry is not None:
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise EncodingError(f"SSE retry must be a non-negative int: {retry!r}")
        parts.append(f"retry: {retry}\n")
    if data is not None:
        text = data if isinstance(data, str) else dumps(data)
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(lines) > 1 and not multiline:
            raise EncodingError("SSE data has a line break; pass multiline=True to split it")
        parts.extend(f"data: {line}\n" for line in lines)
    if not parts:
        raise EncodingError("an SSE event needs at least one field")
    parts.append("\n")
    return "".join(parts).encode()


def comment(text: str = "") -> bytes:
    """Encode a comment line (clients ignore it; proxies see traffic)."""
    return f":{_check_field('comment', text)}\n\n".encode()


def retry(milliseconds: int) -> bytes:
    """Encode a stand-alone ``retry:`` hint."""
    return encode(retry=milliseconds)


@dataclass
class ServerSentEvent:
    """One parsed event; ``data`` is the raw text (JSON for nexus_sse streams)."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    """Incremental parser: feed it text chunks, get back complete events (comments kept)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._reset()

    def _reset(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._comments: list[str] = []

    def feed(self, chunk: str) -> list[ServerSentEvent]:
        self._buffer += chunk
        out: list[ServerSentEvent] = []
        *lines, self._buffer = _split_lines(self._buffer)
        for line in lines:
            event = self._line(line)
            if event is not None:
                out.append(event)
        return out

    def end(self) -> list[ServerSentEvent]:
        """The stream ended: a CR held back as a possible half of CRLF was a line end after all."""
        return self.feed("\n") if self._buffer.endswith("\r") else []

    def _line(self, line: str) -> ServerSentEvent | None:
        if line == "":
            if not (self._data or self._event or self._id or self._retry is not None or self._comments):
                return None
            event = ServerSentEvent(
                event=self._event or "message",
                data="\n".join(self._data),
                id=self._id,
                retry=self._retry,
                comments=self._comments,
            )
            self._reset()
            return event
        if line.startswith(":"):
            self._comments.append(line[1:])
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():  # "²".isdigit() is True
            self._retry = int(value)
        return None


def _split_lines(text: str) -> list[str]:
    # CRLF, CR and LF all end a line; the last piece is an incomplete line (possibly "").
    # A trailing CR might be the first half of CRLF, so keep it for the next chunk.
    keep_cr = text.endswith("\r")
    if keep_cr:
        text = text[:-1]
    pieces = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if keep_cr:
        pieces[-1] += "\r"
    return pieces


def parse(stream: str | bytes | Iterable[str | bytes]) -> list[ServerSentEvent]:
    """Parse a complete stream (or an iterable of chunks) into events."""
    return list(iter_events([stream] if isinstance(stream, (str, bytes)) else stream))


def iter_events(chunks: Iterable[str | bytes]) -> Iterator[ServerSentEvent]:
    """Parse chunks lazily (a UTF-8 character may be split across byte chunks)."""
    parser = SSEParser()
    decoder = codecs.getincrementaldecoder("utf-8")()
    for chunk in chunks:
        yield from parser.feed(decoder.decode(chunk) if isinstance(chunk, bytes) else chunk)
    yield from parser.feed(decoder.decode(b"", final=True))
    yield from parser.end()
