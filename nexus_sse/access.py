"""Who may do what: authentication, per-workflow access, rate limits, stream caps, run visibility, CSRF.

Browsers authenticate with Django sessions (and need the CSRF token on POSTs); programs send
``Authorization: Token <key>`` (DRF's authtoken); EventSource pages pass a short-lived signed
``?stream_token=`` bound to one workflow or run (see stream_tokens.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware

from nexus_sse import conf, db, stream_tokens
from nexus_sse.exceptions import AuthenticationError, NotFound, PermissionDenied, RateLimitError
from nexus_sse.models import Run, Workflow

# The Workflow fields that make up its access policy: the ones a code workflow may change too.
POLICY_FIELDS = ("is_active", "access", "permission", "rate_limit")

Scheme = Literal["token", "stream_token", "session"]


@dataclass(frozen=True, slots=True)
class Auth:
    """Who sent a request and how: ``scheme`` None for anonymous; ``scope``, a stream token's payload."""

    user: Any
    scheme: Scheme | None = None
    scope: dict[str, Any] | None = None


class _Authenticated(Protocol):
    nexus: Auth


def auth_of(request: HttpRequest) -> Auth | None:
    """The request's ``Auth`` once ``authenticate`` has run; None before."""
    return getattr(request, "nexus", None)


async def authenticate(request: HttpRequest) -> Auth:
    """Find the request's user, once: token header, then signed stream token, then the session.

    ``request.user`` becomes that user too, as DRF does, so the site's middleware and logs see
    a token's user; nexus_sse itself reads ``auth_of(request)``.
    """
    auth = auth_of(request)
    if auth is not None:
        return auth
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token_scheme(header):
        auth = Auth(await _token_user(header), "token")
    elif request.method == "GET" and request.META.get("QUERY_STRING") and request.GET.get("stream_token"):
        # (tokens open streams, nothing else; no query string: no QueryDict to build)
        payload = stream_tokens.verify(request.GET["stream_token"])
        user = await _user_by_id(payload["u"]) if payload["u"] is not None else AnonymousUser()
        auth = Auth(user, "stream_token", payload)
    else:
        auser = getattr(request, "auser", None)
        user = await auser() if auser is not None else AnonymousUser()
        auth = Auth(user, "session" if user.is_authenticated else None)
    cast("_Authenticated", request).nexus = auth
    request.user = auth.user
    return auth


def token_scheme(header: str) -> bool:
    """Whether an Authorization header is ours ("Token <key>" or "Bearer <key>").

    Other schemes (e.g. Basic, from a password-protected staging site) are left to the server in
    front and the request falls back to the session, as DRF's TokenAuthentication does.
    """
    return header.partition(" ")[0].lower() in ("token", "bearer")


async def _token_user(header: str) -> Any:
    key = header.partition(" ")[2]
    if not key.strip():
        raise AuthenticationError("Authorization header must be 'Token <key>'")
    try:
        from rest_framework.authtoken.models import Token
    except (ImportError, RuntimeError):
        raise AuthenticationError("token authentication is not enabled on this site") from None
    if not Token._meta.apps.is_installed("rest_framework.authtoken"):
        raise AuthenticationError("token authentication is not enabled on this site")
    token = await db.call(lambda: Token.objects.select_related("user").filter(key=key.strip()).first())
    if token is None or not token.user.is_active:
        raise AuthenticationError("invalid token")
    return token.user


async def _user_by_id(pk: Any) -> Any:
    user = await db.call(lambda: get_user_model()._default_manager.filter(pk=pk, is_active=True).first())
    if user is None:
        raise AuthenticationError("the stream token's user no longer exists")
    return user


def policy(workflow: Workflow) -> str:
    return workflow.access or conf.get("DEFAULT_ACCESS")


def _decided(user: Any, workflow: Workflow) -> bool | None:
    """The policy's answer, or None when it depends on a permission lookup."""
    rule = policy(workflow)
    if rule == "public":
        return True
    if not user.is_authenticated:
        return False
    if rule == "authenticated":
        return True
    return None if workflow.permission else False


def may_execute(user: Any, workflow: Workflow) -> bool:
    """Whether ``user`` passes ``workflow``'s access policy, from sync code (API, pages)."""
    decided = _decided(user, workflow)
    return user.has_perm(workflow.permission) if decided is None else decided


async def can_execute(user: Any, workflow: Workflow) -> bool:
    """``may_execute`` for async code (the permission lookup runs on a database thread)."""
    decided = _decided(user, workflow)
    return await db.call(user.has_perm, workflow.permission) if decided is None else decided


async def authorize_execute(request: HttpRequest, workflow: Workflow) -> Any:
    """Return the user allowed to run ``workflow``; raise 401/403/429 otherwise."""
    auth = await authenticate(request)
    user, scope = auth.user, auth.scope
    if scope is not None and scope.get("w") != workflow.slug:
        raise PermissionDenied("this stream token is for another workflow or run")
    if not await can_execute(user, workflow):
        if not user.is_authenticated:
            raise AuthenticationError(f"workflow {workflow.slug!r} needs an authenticated user")
        raise PermissionDenied(f"you may not run workflow {workflow.slug!r}")
    rate = workflow.rate_limit or conf.get("DEFAULT_RATE_LIMIT")
    if rate:
        from nexus_sse.api.throttling import check_rate

        wait = await asyncio.to_thread(check_rate, request, user, rate, workflow.slug)
        if wait is not None:
            raise RateLimitError(
                f"too many runs of {workflow.slug!r}; retry in {wait:.0f}s", retry_after=wait
            )
    return user


def can_see_run(user: Any, run: Run) -> bool:
    """Whether ``user`` may see ``run``: its owner and staff may, and anyone may see a run without
    an owner (whoever knows its id)."""
    if run.user_id is None:
        return True
    return bool(user.is_authenticated and (user.pk == run.user_id or user.is_staff))


def listed_runs(user: Any, runs: QuerySet[Run]) -> QuerySet[Run]:
    """The runs of ``runs`` that ``user`` may list: their own; staff all of them.

    Runs without an owner are visible (``can_see_run``) but listed to staff only.
    """
    if not user.is_authenticated:
        return runs.none()
    return runs if user.is_staff else runs.filter(user=user)


async def authorize_run(request: HttpRequest, run: Run) -> None:
    """Let through whoever may see ``run``; to others it does not exist (404)."""
    auth = await authenticate(request)
    scope = auth.scope
    if scope is not None and scope.get("r") != str(run.pk) and scope.get("w") != run.workflow.slug:
        raise PermissionDenied("this stream token is for another workflow or run")
    if not can_see_run(auth.user, run):
        raise NotFound("no such run")


def client_key(request: HttpRequest) -> str:
    """Whom open streams are counted against: the user, or the client address when anonymous."""
    auth = auth_of(request)
    if auth is not None and auth.user.is_authenticated:
        return f"user:{auth.user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', '')}"


_open_streams: Counter[str] = Counter()
# Streams are counted on the event loop, but Django's ASGI handler closes a response (and so
# releases its stream) in a worker thread: both threads change the counts.
_open_streams_lock = threading.Lock()


def acquire_stream(request: HttpRequest) -> Callable[[], None]:
    """Count an open stream against MAX_STREAMS_PER_USER; return the function that releases it."""
    limit = conf.get("MAX_STREAMS_PER_USER")
    key = client_key(request)
    with _open_streams_lock:
        if limit is not None and _open_streams[key] >= limit:
            raise RateLimitError(f"too many open streams (at most {limit})", retry_after=1)
        _open_streams[key] += 1
    released = False

    def release() -> None:
        nonlocal released
        with _open_streams_lock:
            if released:
                return
            released = True
            _open_streams[key] -= 1
            if _open_streams[key] <= 0:
                del _open_streams[key]

    return release


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, answering with the reason instead of a 403 page (as DRF does)."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _not_called(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """The view and the next middleware, for _CsrfCheck: it calls neither."""
    raise NotImplementedError


def enforce_csrf(request: HttpRequest) -> None:
    """Require Django's CSRF token on unsafe requests that carry a session cookie.

    Requests without one (token-authenticated programs, curl) are not CSRF-prone and are left alone,
    as DRF's SessionAuthentication does.
    """
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    if token_scheme(request.META.get("HTTP_AUTHORIZATION", "")):
        return  # authenticated by the token alone, never by the session
    if "HTTP_COOKIE" not in request.META or settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return
    check = _CsrfCheck(_not_called)
    check.process_request(request)
    reason = check.process_view(request, _not_called, (), {})
    if reason:
        raise PermissionDenied(f"CSRF check failed: {reason}")
