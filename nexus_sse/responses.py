"""Error responses: the JSON body of a NexusError, and Retry-After when it says when to retry."""

from __future__ import annotations

from typing import Any, TypeVar

from django.http import HttpResponseBase, JsonResponse

from nexus_sse.exceptions import NexusError

R = TypeVar("R", bound=HttpResponseBase)


def error_body(error: NexusError, run_id: str | None = None) -> dict[str, Any]:
    """``{"error", "error_type"[, "path"], ...extra[, "run_id"]}``; ``retry_after`` goes in a header."""
    body = error.as_dict()
    if run_id:
        body["run_id"] = run_id
    body.pop("retry_after", None)
    return body


def with_retry_after(response: R, error: NexusError) -> R:
    """Set ``Retry-After`` (whole seconds, at least 1) when ``error`` carries ``retry_after``."""
    retry_after = error.extra.get("retry_after")
    if retry_after is not None:
        response["Retry-After"] = str(max(1, round(retry_after)))
    return response


def error_response(error: NexusError, run_id: str | None = None) -> JsonResponse:
    """``error`` as a JSON response with its status."""
    return with_retry_after(JsonResponse(error_body(error, run_id), status=error.status), error)
