"""Client errors: the server's error_type becomes the matching nexus_sse.exceptions class."""

from __future__ import annotations

from typing import Any

from nexus_sse.exceptions import ERROR_TYPES, InternalError, NexusError


class ConnectionLost(NexusError):
    """The connection dropped and the run could not be resumed (no run id yet, or retries exhausted)."""

    error_type = "ConnectionLost"


def error_from(body: Any, status: int | None = None, run_id: str | None = None) -> NexusError:
    """The typed exception for an error body or ``error`` event data."""
    if not isinstance(body, dict):
        body = {}
    cls = ERROR_TYPES.get(body.get("error_type", ""), InternalError)
    message = body.get("error") or (f"HTTP {status}" if status else "error")
    extra = {k: v for k, v in body.items() if k not in ("error", "error_type", "path")}
    if run_id and "run_id" not in extra:
        extra["run_id"] = run_id
    if status is not None:
        extra["http_status"] = status
    return cls(message, path=body.get("path"), **extra)
