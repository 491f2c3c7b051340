"""The fast path: nexus_sse's streaming endpoints served straight from ASGI, in front of Django.

Django's ASGI handler costs more than a whole short run: every request gets a thread-sensitive
context whose first sync call starts an OS thread (``request_started``'s receivers), then the
middleware chain, then a thread again for ``response.close()``. The two endpoints that carry the
load — ``workflows/<name>/execute`` and ``runs/<id>/events`` — need none of it for a request that
cannot carry a Django session: nexus_sse authenticates those itself (``Authorization: Token``,
signed stream tokens), checks CSRF itself, and does its database work on its own threads.

So :class:`FastPathApplication` serves a request itself when all of these hold, and hands it to the
wrapped Django application untouched otherwise:

* it is an HTTP GET or POST whose path resolves to one of those two views (any URL prefix): a view
  whose ``nexus_streams`` attribute is true (``views.api_view(..., streams=True)`` sets it);
* it has no ``Cookie`` header (no session, so no session authentication or CSRF to run) and no
  ``Origin`` header (CORS is django-cors-headers' job);
* its ``Host`` passes ``ALLOWED_HOSTS``, and no ``SECURE_SSL_REDIRECT``, ``PREPEND_WWW`` or
  ``DISALLOWED_USER_AGENTS`` setting would have answered it differently;
* ``NEXUS_SSE["FAST_PATH"]`` is true (the default).

It then calls the same view Django would, so the answer — status, body, errors, policies, rate
limits — is the same; what it skips is the site's middleware and ``request_started`` /
``request_finished``. Do not install it if a middleware of yours must see those requests (an IP
allow list, a site-wide login gate); see docs/performance.md.
"""

from __future__ import annotations

import asyncio
import functools
import io
from contextlib import aclosing
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import Resolver404, get_resolver, set_script_prefix

from nexus_sse import conf, sse
from nexus_sse.streaming import run_callbacks

ASGIApp = Any  # an ASGI 3 callable: (scope, receive, send) -> awaitable
Response = HttpResponse | StreamingHttpResponse


class _Watch:
    """Cancels the task serving a request when its client goes away, until the response ends.

    (A task group would do it too, at three times the cost per request: an extra task, an exception
    to stop it and an exception group to catch.)"""

    def __init__(self, receive: Any) -> None:
        task = asyncio.current_task()
        assert task is not None  # (an ASGI server calls its application in a task)
        self.task = task
        #: whether a disconnect still cancels the response (not once its last message is going out:
        #: servers report "disconnect" after a complete response, and the stream's cleanup must run)
        self.watching = True
        self.left = False
        self.listener = asyncio.ensure_future(self.listen(receive))
        self.listener.add_done_callback(self.client_left)

    @staticmethod
    async def listen(receive: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    def client_left(self, listener: asyncio.Future) -> None:
        if not listener.cancelled() and listener.exception() is None and self.watching:
            self.left = True
            self.task.cancel()

    def absorbs(self) -> bool:
        """Whether a CancelledError is only our own, for a client that left (then it is undone)."""
        return self.left and self.task.uncancel() == 0

    def stop(self) -> None:
        self.watching = False
        self.listener.cancel()


class FastPathApplication:
    """Wrap Django's ASGI application; serve nexus_sse's stream endpoints without its handler.

    ``application = FastPathApplication(get_asgi_application())`` in your ``asgi.py``.
    """

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        prepared = self.prepare(scope) if scope["type"] == "http" else None
        if prepared is None:
            return await self.application(scope, receive, send)
        await self.serve(prepared, receive, send)

    def prepare(self, scope: dict) -> list[tuple[ASGIRequest, Any, io.BytesIO]] | None:
        """``[(request, URL match, empty body buffer)]`` when the fast path may serve ``scope``.

        A list, so that the view call can take the request out of it: an open stream keeps no
        request (nor its response) alive, only what the stream itself needs."""
        if scope["method"] not in ("GET", "POST") or not conf.get("FAST_PATH"):
            return None
        for name, _ in scope["headers"]:
            if name == b"cookie" or name == b"origin":
                return None
        if (
            settings.PREPEND_WWW
            or settings.DISALLOWED_USER_AGENTS
            or (settings.SECURE_SSL_REDIRECT and scope.get("scheme") != "https")
        ):
            return None
        body = io.BytesIO()
        try:
            request = ASGIRequest(scope, body)
            request.get_host()  # ALLOWED_HOSTS; Django answers a bad host with its own 400
        except (DisallowedHost, UnicodeDecodeError):
            return None
        match = _resolve(settings.ROOT_URLCONF, request.path_info)
        if match is None or not getattr(match.func, "nexus_streams", False):
            return None
        request.resolver_match = match
        return [(request, match, body)]

    async def serve(self, prepared: list, receive: Any, send: Any) -> None:
        if not await self.read_body(receive, prepared[0][2]):
            return  # the client left while sending the body
        watch = _Watch(receive)
        try:
            await self.respond([await self.call_view(prepared)], send, watch)
        except asyncio.CancelledError:
            if not watch.absorbs():
                raise
        finally:
            watch.stop()

    async def call_view(self, prepared: list) -> Response:
        request, match, _ = prepared.pop()
        set_script_prefix(request.script_name)  # reverse() in the views builds URLs under it
        return await match.func(request, *match.args, **match.kwargs)

    async def read_body(self, receive: Any, body: io.BytesIO) -> bool:
        """Read the request body into ``body`` (False if the client left). Past MAX_BODY_BYTES the
        rest is not read: the view answers 413 from the first MAX_BODY_BYTES + 1 bytes.

        (Not ``ASGIHandler.read_body``: it reads the whole body, whatever its size, into a spooled
        temporary file, and raises for a client that left.)"""
        limit = conf.get("MAX_BODY_BYTES") + 1
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return False
            chunk = message.get("body", b"")
            if size < limit and chunk:
                body.write(chunk[: limit - size])
                size += len(chunk)
            if not message.get("more_body", False) or size >= limit:
                body.seek(0)
                return True

    async def respond(self, holder: list[Response], send: Any, watch: _Watch) -> None:
        """Send the response in ``holder`` (taken out of it: a stream keeps only its body)."""
        response = holder.pop()
        await send(_start_message(response))
        if not isinstance(response, StreamingHttpResponse):
            watch.watching = False
            await send({"type": "http.response.body", "body": response.content})
            return
        # Our SSE responses yield bytes already: iterate them directly rather than through
        # StreamingHttpResponse's two wrapping generators.
        # (Either is an async generator, which aclosing needs; typed as Django's __aiter__ is, it is not.)
        chunks: Any = getattr(response, "chunks", None) or aiter(response)
        callbacks = getattr(response, "on_close", [])
        del response
        ended = False
        try:
            async with aclosing(chunks):
                async for chunk in chunks:
                    if ended:
                        continue  # (nothing follows a stream's last chunk; the body is over)
                    # A run stream's terminal event ends the body in the same write, not one more.
                    ended = type(chunk) is sse.LastChunk
                    watch.watching = not ended
                    await send({"type": "http.response.body", "body": chunk, "more_body": not ended})
            if not ended:
                watch.watching = False
                await send({"type": "http.response.body"})
        finally:
            # What response.close() runs, less request_finished: no request_started was sent.
            run_callbacks(callbacks)


def _start_message(response: Response) -> dict:
    """The ``http.response.start`` message, headers as Django's handler encodes them (in
    ``ASGIHandler.send_response``, whose body half does not fit: see respond)."""
    headers = [(name.encode("ascii"), value.encode("latin1")) for name, value in response.items()]
    headers += [(b"Set-Cookie", c.OutputString().encode("ascii")) for c in response.cookies.values()]
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}


@functools.lru_cache(maxsize=1024)
def _resolve(urlconf: str, path: str) -> Any:
    """The URL match of ``path`` (None: no route), remembered: resolving costs more than the rest of
    the routing, and the execute paths repeat. (Run URLs do not; the cache is bounded.)"""
    try:
        return get_resolver(urlconf).resolve(path)
    except Resolver404:
        return None


def get_asgi_application() -> FastPathApplication:
    """Django's ASGI application behind the fast path (a drop-in for Django's function)."""
    from django.core.asgi import get_asgi_application as django_application

    return FastPathApplication(django_application())
