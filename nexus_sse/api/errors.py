"""DRF errors in nexus_sse's error body: {"error", "error_type"[, "path"]}, with Retry-After on 429."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from nexus_sse import conf
from nexus_sse.exceptions import InternalError, NexusError
from nexus_sse.responses import error_body, with_retry_after

logger = logging.getLogger("nexus_sse.api")

_TYPES = {
    exceptions.ValidationError: "ValidationError",
    exceptions.ParseError: "ValidationError",
    exceptions.UnsupportedMediaType: "ValidationError",
    exceptions.MethodNotAllowed: "ValidationError",
    exceptions.NotAuthenticated: "AuthenticationError",
    exceptions.AuthenticationFailed: "AuthenticationError",
    exceptions.PermissionDenied: "PermissionDenied",
    exceptions.NotFound: "NotFound",
    exceptions.Throttled: "RateLimitError",
}


def _first(detail: Any, path: str = "") -> tuple[str, str]:
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        return _first(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        return _first(detail[0], path)
    return str(detail), path


def handle(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER for nexus_sse's API views."""
    if isinstance(exc, NexusError):
        # a DRF Response, not responses.error_response: the site's renderers write the body
        return with_retry_after(Response(error_body(exc), status=exc.status), exc)
    response = exception_handler(exc, context)
    if response is None:
        # Anything unexpected: our JSON body with a generic message (the details go to the log),
        # instead of Django's HTML 500 page or, under DEBUG only, the exception text.
        view = context.get("view")
        logger.error("unexpected error in %s", type(view).__name__, exc_info=exc)
        set_rollback()  # as DRF does for the errors it handles (ATOMIC_REQUESTS)
        detail = f"{type(exc).__name__}: {exc}" if conf.expose_errors() else None
        return Response(InternalError(detail).as_dict(), status=500)
    error_type = next((t for cls, t in _TYPES.items() if isinstance(exc, cls)), "InternalError")
    message, path = _first(response.data)
    body = {"error": message, "error_type": error_type}
    if path and path != "detail":
        body["path"] = path
    response.data = body
    return response
