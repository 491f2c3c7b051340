"""A stream response's ``on_close`` callbacks: one that raises is logged, and the rest still run, on the
fast path (nexus_sse.asgi) and on Django's path, whose handler then still sends request_finished."""

from __future__ import annotations

import pytest
from django.core.signals import request_finished
from django.test import override_settings
from django.urls import path

from nexus_sse.streaming import SSEResponse
from tests.inprocess import request

ran: list[str] = []


def failing() -> None:
    raise RuntimeError("this callback fails")


async def one_event():
    yield b"data: 1\n\n"


async def closing(request):
    return SSEResponse(
        one_event(), content_type="text/event-stream", on_close=[failing, lambda: ran.append("next")]
    )


closing.nexus_streams = True  # served by the fast path, like nexus_sse's own stream views
urlpatterns = [path("closing", closing)]


@pytest.fixture
def finished():
    """The request_finished signals sent while the test runs."""
    sent: list[object] = []

    def receiver(sender, **kwargs):
        sent.append(sender)

    ran.clear()
    request_finished.connect(receiver)
    with override_settings(ROOT_URLCONF=__name__):
        yield sent
    request_finished.disconnect(receiver)


async def test_a_failing_callback_does_not_skip_the_next_on_the_fast_path(finished, caplog):
    response = await request("GET", "/closing")
    assert response.header("X-Content-Type-Options") is None  # no middleware ran: the fast path
    assert response.body == b"data: 1\n\n"
    assert ran == ["next"]
    assert "on_close callback" in caplog.text and "this callback fails" in caplog.text
    assert finished == []  # the fast path sent no request_started, so no request_finished


async def test_a_failing_callback_does_not_skip_the_next_nor_request_finished_on_djangos_path(
    finished, caplog
):
    response = await request("GET", "/closing", headers={"Cookie": "a=1"})
    assert response.header("X-Content-Type-Options") is not None  # Django's handler and middleware
    assert response.body == b"data: 1\n\n"
    assert ran == ["next"]
    assert "on_close callback" in caplog.text and "this callback fails" in caplog.text
    assert len(finished) == 1  # SSEResponse.close went on to Django's close()
