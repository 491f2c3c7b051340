"""access.py in process: the request's authentication, the run-visibility rule and the open-stream
counts, which the event loop and Django's response-closing threads share."""

import asyncio
import queue
import sys
import threading
from collections import Counter

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from nexus_sse import access
from nexus_sse.exceptions import RateLimitError
from nexus_sse.models import Run
from tests import factories


def stream_request(address="10.1.2.3"):
    return RequestFactory().get("/workflows/greet/execute", REMOTE_ADDR=address)


class PreemptibleCounter(Counter):
    """A Counter whose reads are Python calls: with the GIL, a thread switch can only happen at
    such a call, so this lets one land inside ``counts[key] -= 1`` as it can without the GIL."""

    def __getitem__(self, key):
        return super().__getitem__(key)


@pytest.fixture
def racy_counts(monkeypatch):
    """Switch threads as often as CPython allows, inside every read of the stream counts."""
    monkeypatch.setattr(access, "_open_streams", PreemptibleCounter())
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def acquire_while_threads_release(request, streams, threads):
    """Acquire ``streams`` streams here while ``threads`` threads release them, each twice."""
    todo = queue.SimpleQueue()

    def releaser():
        while (release := todo.get()) is not None:
            release()

    workers = [threading.Thread(target=releaser) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for _ in range(streams):
        release = access.acquire_stream(request)
        todo.put(release)
        todo.put(release)  # a second close of the same response counts nothing
    for _ in workers:
        todo.put(None)
    for worker in workers:
        worker.join()


async def test_streams_released_from_other_threads_while_the_loop_acquires_end_at_zero(settings, racy_counts):
    settings.NEXUS_SSE = {**settings.NEXUS_SSE, "MAX_STREAMS_PER_USER": None}
    request = stream_request()
    acquire_while_threads_release(request, streams=20_000, threads=4)
    assert "ip:10.1.2.3" not in access._open_streams
    # and the cap counts from zero again: two more streams, not a third
    settings.NEXUS_SSE = {**settings.NEXUS_SSE, "MAX_STREAMS_PER_USER": 2}
    releases = [access.acquire_stream(request), access.acquire_stream(request)]
    with pytest.raises(RateLimitError):
        access.acquire_stream(request)
    for release in releases:
        release()
    assert "ip:10.1.2.3" not in access._open_streams


def test_a_release_after_its_event_loop_has_closed_still_frees_the_slot(settings):
    settings.NEXUS_SSE = {**settings.NEXUS_SSE, "MAX_STREAMS_PER_USER": 1}

    async def open_stream():
        return access.acquire_stream(stream_request("10.9.9.9"))

    release = asyncio.run(open_stream())
    with pytest.raises(RateLimitError):
        asyncio.run(open_stream())
    thread = threading.Thread(target=release)  # as Django closes a response: in a worker thread
    thread.start()
    thread.join()
    asyncio.run(open_stream())()
    assert "ip:10.9.9.9" not in access._open_streams


async def test_authentication_happens_once_and_sets_request_user():
    request = stream_request()
    auth = await access.authenticate(request)
    assert (auth.scheme, auth.scope, auth.user.is_authenticated) == (None, None, False)
    assert access.auth_of(request) is auth
    assert await access.authenticate(request) is auth
    assert request.user is auth.user


@pytest.mark.django_db
def test_a_run_is_visible_to_its_owner_and_staff_and_an_ownerless_one_to_anyone():
    ann, bob = factories.user("ann"), factories.user("bob")
    staff = factories.user("root", staff=True)
    owned, ownerless = Run(user_id=ann.pk), Run(user_id=None)
    seen = {
        who: (access.can_see_run(user, owned), access.can_see_run(user, ownerless))
        for who, user in (("ann", ann), ("bob", bob), ("staff", staff), ("anonymous", AnonymousUser()))
    }
    assert seen == {
        "ann": (True, True),
        "bob": (False, True),
        "staff": (True, True),
        "anonymous": (False, True),
    }
