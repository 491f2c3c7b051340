"""Who may do what: execute a workflow, see or cancel a run, and CSRF for session-authenticated POSTs."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware

from nexus_sse.exceptions import NotFound, PermissionDenied
from nexus_sse.models import Run, Workflow


async def get_user(request: HttpRequest) -> Any:
    """The request's user (AnonymousUser when AuthenticationMiddleware is not installed)."""
    auser = getattr(request, "auser", None)
    return await auser() if auser is not None else AnonymousUser()


async def authorize_execute(request: HttpRequest, workflow: Workflow) -> Any:
    """Return the user allowed to run ``workflow`` (every active workflow is public for now)."""
    return await get_user(request)


async def authorize_run(request: HttpRequest, run: Run) -> None:
    """A run with an owner is visible to that owner and to staff; others get 404 (not even its existence)."""
    if run.user_id is None:
        return
    user = await get_user(request)
    if not (user.is_authenticated and (user.pk == run.user_id or user.is_staff)):
        raise NotFound("no such run")


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def enforce_csrf(request: HttpRequest) -> None:
    """Require Django's CSRF token on POSTs that a browser session authenticates.

    Requests without a session cookie (token-authenticated programs, curl) are not CSRF-prone and
    are left alone, as DRF's SessionAuthentication does.
    """
    if request.method not in ("POST", "PUT", "PATCH", "DELETE") or "Authorization" in request.headers:
        return
    from django.conf import settings

    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return
    check = _CsrfCheck(lambda req: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise PermissionDenied(f"CSRF check failed: {reason}")
