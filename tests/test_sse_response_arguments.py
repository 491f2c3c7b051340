"""nexus_sse.sse_response checks its arguments when called, as sse-starlette does: keepalive 0 turns
keepalives off, a negative or non-finite keepalive and a bad retry raise ValueError."""

from __future__ import annotations

import asyncio
import math

import pytest

from nexus_sse import sse, sse_response


async def nothing():
    return
    yield


async def test_keepalive_zero_sends_no_keepalive_while_the_source_waits():
    waiting, release = asyncio.Event(), asyncio.Event()

    async def source():
        waiting.set()
        await release.wait()
        yield {"event": "tick", "data": 1}

    response = sse_response(source(), keepalive=0, retry=1000)
    chunks: list[bytes] = []

    async def read() -> None:
        async for chunk in response.streaming_content:
            chunks.append(chunk)

    reader = asyncio.ensure_future(read())
    await waiting.wait()  # the source is silent now, until released
    release.set()
    await reader
    assert chunks == [b"retry: 1000\n\n", b"event: tick\ndata: 1\n\n"]
    assert sse.KEEPALIVE not in chunks


@pytest.mark.parametrize("keepalive", [-1, -0.5, math.nan, math.inf, -math.inf])
def test_a_negative_or_non_finite_keepalive_is_refused(keepalive):
    with pytest.raises(ValueError, match="keepalive must be a finite number of seconds >= 0"):
        sse_response(nothing(), keepalive=keepalive)


@pytest.mark.parametrize("retry", [-1, 1.5, "3000", True])
def test_retry_must_be_a_non_negative_int(retry):
    with pytest.raises(ValueError, match="retry must be an int of milliseconds >= 0"):
        sse_response(nothing(), retry=retry)


def test_retry_zero_and_none_are_accepted():
    assert sse_response(nothing(), retry=0).streaming
    assert sse_response(nothing(), retry=None).streaming
