"""The error taxonomy. Each class knows its wire ``error_type``, its HTTP status and the exit status
of the ``nexus-sse run`` command that meets it."""

from __future__ import annotations

from typing import Any


class NexusError(Exception):
    """Base of every error that reaches a client; ``error_type`` is what the wire says."""

    error_type = "InternalError"
    status = 500
    exit_code = 10
    default_message = "Internal error."

    def __init__(self, message: str | None = None, *, path: str | None = None, **extra: Any) -> None:
        self.message = message or self.default_message
        self.path = path
        self.extra = extra
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "error_type": self.error_type}
        if self.path is not None:
            body["path"] = self.path
        body.update(self.extra)
        return body


class ValidationError(NexusError):
    """The request or a workflow definition is invalid."""

    error_type = "ValidationError"
    status = 400
    exit_code = 2
    default_message = "Invalid request."


class PayloadTooLarge(ValidationError):
    """The request body exceeds MAX_BODY_BYTES."""

    status = 413
    default_message = "Request body too large."


class WorkflowDefinitionError(ValidationError):
    """A workflow graph cannot be built: unknown node type, cycle, bad connection..."""

    default_message = "Invalid workflow definition."


class AuthenticationError(NexusError):
    """The request needs an authenticated user."""

    error_type = "AuthenticationError"
    status = 401
    exit_code = 3
    default_message = "Authentication required."


class PermissionDenied(NexusError):
    """The user may not do this."""

    error_type = "PermissionDenied"
    status = 403
    exit_code = 4
    default_message = "Permission denied."


class NotFound(NexusError):
    """No such workflow or run."""

    error_type = "NotFound"
    status = 404
    exit_code = 5
    default_message = "Not found."


class RateLimitError(NexusError):
    """Too many requests."""

    error_type = "RateLimitError"
    status = 429
    exit_code = 6
    default_message = "Too many requests."


class NodeError(NexusError):
    """A node raised while running."""

    error_type = "NodeError"
    status = 500
    exit_code = 7
    default_message = "A workflow node failed."


class ProviderError(NodeError):
    """A model server failed; the message is written for clients (no keys, no internals)."""

    public = True


class RunTimeoutError(NexusError):
    """The run exceeded RUN_TIMEOUT_SECONDS (or a node its own timeout)."""

    error_type = "TimeoutError"
    status = 504
    exit_code = 8
    default_message = "The run timed out."


class RunCancelledError(NexusError):
    """The run was cancelled (by request or because nobody was listening)."""

    error_type = "CancelledError"
    status = 409
    exit_code = 9
    default_message = "The run was cancelled."


class InternalError(NexusError):
    """Anything else; never carries internals unless DEBUG."""


class EventLogUnavailable(InternalError):
    """The event log's server (Redis) cannot be reached or refused a command: a 503.

    Its message names the server, never its credentials, and is shown to clients.
    """

    status = 503
    public = True
    default_message = "The event log is unavailable."


# Every error_type on the wire, in the order the docs list them.
ERROR_TYPES: dict[str, type[NexusError]] = {
    cls.error_type: cls
    for cls in (
        ValidationError,
        AuthenticationError,
        PermissionDenied,
        NotFound,
        RateLimitError,
        NodeError,
        RunTimeoutError,
        RunCancelledError,
        InternalError,
    )
}
