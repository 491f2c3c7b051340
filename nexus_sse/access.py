"""Who may do what: authentication, per-workflow access, rate limits, stream caps, run visibility, CSRF.

Browsers authenticate with Django sessions (and need the CSRF token on POSTs); programs send
``Authorization: Token <key>`` (DRF's authtoken); EventSource pages pass a short-lived signed
``?stream_token=`` bound to one workflow or run (see stream_tokens.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from nexus_sse import conf, db, stream_tokens
from nexus_sse.exceptions import AuthenticationError, NotFound, PermissionDenied, RateLimitError
from nexus_sse.models import Run, Workflow

_open_streams: Counter[str] = Counter()


async def authenticate(request: HttpRequest) -> Any:
    """Find the request's user: token header, then signed stream token, then the session."""
    if hasattr(request, "nexus_user"):
        return request.nexus_user
    request.nexus_auth, request.nexus_scope = None, None
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token_scheme(header):
        user = await _token_user(header)
        request.nexus_auth = "token"
    elif request.method == "GET" and request.META.get("QUERY_STRING") and request.GET.get("stream_token"):
        # (tokens open streams, nothing else; no query string: no QueryDict to build)
        payload = stream_tokens.verify(request.GET["stream_token"])
        user = await _user_by_id(payload["u"]) if payload["u"] is not None else AnonymousUser()
        request.nexus_auth, request.nexus_scope = "stream_token", payload
    else:
        auser = getattr(request, "auser", None)
        user = await auser() if auser is not None else AnonymousUser()
        request.nexus_auth = "session" if user.is_authenticated else None
    request.nexus_user = request.user = user
    return user


async def get_user(request: HttpRequest) -> Any:
    return await authenticate(request)


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
    user = await authenticate(request)
    scope = request.nexus_scope
    if scope is not None and scope.get("w") != workflow.slug:
        raise PermissionDenied("this stream token is for another workflow or run")
    if not await can_execute(user, workflow):
        if not user.is_authenticated:
            raise AuthenticationError(f"workflow {workflow.slug!r} needs an authenticated user")
        raise PermissionDenied(f"you may not run workflow {workflow.slug!r}")
    rate = workflow.rate_limit or conf.get("DEFAULT_RATE_LIMIT")
    if rate:
        from nexus_sse.api.throttling import check_rate

        wait = await asyncio.to_thread(check_rate, request, rate, workflow.slug)
        if wait is not None:
            raise RateLimitError(
                f"too many runs of {workflow.slug!r}; retry in {wait:.0f}s", retry_after=wait
            )
    return user


async def authorize_run(request: HttpRequest, run: Run) -> None:
    """A run with an owner is visible to that owner and to staff; to others it does not exist (404)."""
    user = await authenticate(request)
    scope = request.nexus_scope
    if scope is not None and scope.get("r") != str(run.pk) and scope.get("w") != run.workflow.slug:
        raise PermissionDenied("this stream token is for another workflow or run")
    if run.user_id is None:
        return
    if not (user.is_authenticated and (user.pk == run.user_id or user.is_staff)):
        raise NotFound("no such run")


def client_key(request: HttpRequest) -> str:
    user = getattr(request, "nexus_user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{request.META.get('REMOTE_ADDR', '')}"


def acquire_stream(request: HttpRequest) -> Callable[[], None]:
    """Count an open stream against MAX_STREAMS_PER_USER; return the function that releases it."""
    limit = conf.get("MAX_STREAMS_PER_USER")
    key = client_key(request)
    if limit is not None and _open_streams[key] >= limit:
        raise RateLimitError(f"too many open streams (at most {limit})", retry_after=1)
    _open_streams[key] += 1
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            _open_streams[key] -= 1
            if _open_streams[key] <= 0:
                del _open_streams[key]

    return release


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


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
    check = _CsrfCheck(lambda req: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise PermissionDenied(f"CSRF check failed: {reason}")
