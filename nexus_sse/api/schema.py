"""OpenAPI for the SSE endpoints, which are async Django views that drf-spectacular cannot see.

``add_sse_endpoints`` is a drf-spectacular postprocessing hook: it adds the execute, run-events,
run-status and cancel operations (under whatever prefix the app is mounted), their
``text/event-stream`` responses, each event's data schema, and the error body.
"""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch

from nexus_sse import exceptions
from nexus_sse.links import url_template

ERROR_TYPES = list(exceptions.ERROR_TYPES)

COMPONENTS: dict[str, Any] = {
    "NexusError": {
        "type": "object",
        "description": "Every error, as an HTTP body and as the data of an `error` event.",
        "required": ["error", "error_type"],
        "properties": {
            "error": {"type": "string", "description": "What went wrong (no internals unless DEBUG)."},
            "error_type": {"type": "string", "enum": ERROR_TYPES},
            "path": {"type": "string", "description": "The failing field, e.g. inputs.count."},
            "run_id": {"type": "string", "format": "uuid"},
            "node": {"type": "string", "description": "The failing node (NodeError)."},
            "timestamp": {"type": "number"},
        },
    },
    "ExecuteRequest": {
        "type": "object",
        "properties": {
            "inputs": {
                "type": "object",
                "additionalProperties": True,
                "description": "The workflow's inputs (see its input schema in /api/workflows/).",
            },
            "parameters": {
                "type": "object",
                "additionalProperties": True,
                "description": "Nexus' legacy name for inputs.",
            },
            "mode": {"type": "string", "enum": ["sync", "async", "stream"]},
        },
    },
    "ExecuteResult": {
        "type": "object",
        "required": ["run_id", "workflow_id", "version", "status", "result", "outputs", "execution_time"],
        "properties": {
            "run_id": {"type": "string", "format": "uuid"},
            "workflow_id": {"type": "string"},
            "version": {"type": "string"},
            "status": {"type": "string", "enum": ["completed"]},
            "result": {"description": "The output of the workflow's last node."},
            "outputs": {"type": "object", "additionalProperties": True},
            "execution_time": {"type": "number"},
        },
    },
    "RunAccepted": {
        "type": "object",
        "required": ["run_id", "status", "events_url", "status_url"],
        "properties": {
            "run_id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending"]},
            "events_url": {"type": "string"},
            "status_url": {"type": "string"},
        },
    },
    "RunState": {
        "type": "object",
        "required": ["run_id", "status"],
        "properties": {
            "run_id": {"type": "string", "format": "uuid"},
            "workflow_id": {"type": "string"},
            "version": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["pending", "running", "completed", "failed", "cancelled", "cancelling"],
            },
            "mode": {"type": "string"},
            "inputs": {"type": "object", "additionalProperties": True},
            "result": {},
            "outputs": {"type": "object", "nullable": True, "additionalProperties": True},
            "error": {"type": "string", "nullable": True},
            "error_type": {"type": "string", "nullable": True},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": {"type": "string", "format": "date-time", "nullable": True},
            "finished_at": {"type": "string", "format": "date-time", "nullable": True},
            "execution_time": {"type": "number", "nullable": True},
            "events_url": {"type": "string"},
            "status_url": {"type": "string"},
        },
    },
    "StartEvent": {
        "type": "object",
        "required": ["workflow_id", "version", "run_id", "timestamp"],
        "properties": {
            "workflow_id": {"type": "string"},
            "version": {"type": "string"},
            "run_id": {"type": "string", "format": "uuid"},
            "timestamp": {"type": "number"},
        },
    },
    "ProgressEvent": {
        "type": "object",
        "required": ["node", "status", "percent", "run_id"],
        "properties": {
            "node": {"type": "string"},
            "status": {"type": "string", "enum": ["started", "running", "completed"]},
            "percent": {
                "type": "number",
                "minimum": 0,
                "maximum": 100,
                "description": "Of the whole workflow.",
            },
            "node_percent": {"type": "number"},
            "message": {"type": "string"},
            "run_id": {"type": "string", "format": "uuid"},
            "timestamp": {"type": "number"},
        },
    },
    "TokenEvent": {
        "type": "object",
        "required": ["node", "delta", "run_id"],
        "properties": {
            "node": {"type": "string"},
            "delta": {"type": "string"},
            "run_id": {"type": "string", "format": "uuid"},
        },
    },
    "CompleteEvent": {
        "type": "object",
        "required": ["result", "outputs", "execution_time", "run_id"],
        "properties": {
            "result": {},
            "outputs": {"type": "object", "additionalProperties": True},
            "execution_time": {"type": "number"},
            "run_id": {"type": "string", "format": "uuid"},
            "timestamp": {"type": "number"},
        },
    },
}

STREAM_DESCRIPTION = (
    "A Server-Sent Events stream: `retry: 3000` first, then events with `id: <run_id>:<seq>` and `event:` "
    "one of `start`, `progress`, `token`, `complete`, `error` (data schemas: StartEvent, ProgressEvent, "
    "TokenEvent, CompleteEvent, NexusError). Exactly one terminal event (`complete` or `error`) ends it. "
    "`:keepalive` comments while idle. Resume with `Last-Event-ID`."
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _stream_response() -> dict[str, Any]:
    return {
        "description": STREAM_DESCRIPTION,
        "headers": {"X-Run-Id": {"schema": {"type": "string"}}},
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "x-events": {
                    "start": _ref("StartEvent"),
                    "progress": _ref("ProgressEvent"),
                    "token": _ref("TokenEvent"),
                    "complete": _ref("CompleteEvent"),
                    "error": _ref("NexusError"),
                },
            }
        },
    }


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid request or inputs",
        401: "Authentication required",
        403: "Permission denied",
        404: "No such workflow or run",
        405: "Method not allowed",
        413: "Body too large",
        429: "Rate limited (see Retry-After)",
        500: "A node failed (JSON mode)",
        504: "Timed out (JSON mode)",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": _ref("NexusError")}}}
        for c in codes
    }


LAST_EVENT_ID = [
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "`<run_id>:<seq>`: resume that run after seq (never a new run).",
    },
    {
        "name": "lastEventId",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Same as the Last-Event-ID header (also `last_event_id`).",
    },
    {
        "name": "stream_token",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "A signed stream token from /api/stream-tokens/ (for EventSource).",
    },
]


def _paths(execute: str, run: str) -> dict[str, Any]:
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    run_id = {
        "name": "run_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    return {
        execute: {
            "post": {
                "operationId": "workflows_execute",
                "tags": ["execute"],
                "summary": (
                    "Run a workflow: SSE (Accept: text/event-stream or mode stream), JSON, "
                    "or 202 (mode async)"
                ),
                "parameters": [name, *LAST_EVENT_ID],
                "requestBody": {"content": {"application/json": {"schema": _ref("ExecuteRequest")}}},
                "responses": {
                    "200": {
                        **_stream_response(),
                        "content": {
                            **_stream_response()["content"],
                            "application/json": {"schema": _ref("ExecuteResult")},
                        },
                    },
                    "202": {
                        "description": "Started in the background (mode async)",
                        "content": {"application/json": {"schema": _ref("RunAccepted")}},
                    },
                    "204": {"description": "Resumed a finished run with nothing left to send"},
                    **_errors(400, 401, 403, 404, 405, 413, 429, 500, 504),
                },
            },
            "get": {
                "operationId": "workflows_execute_stream",
                "tags": ["execute"],
                "summary": "Run a workflow and stream it (for EventSource); inputs from the query string",
                "parameters": [
                    name,
                    {
                        "name": "inputs",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "The inputs as a JSON object; "
                        "or give each input as its own query parameter.",
                    },
                    *LAST_EVENT_ID,
                ],
                "responses": {
                    "200": _stream_response(),
                    "204": {"description": "Nothing left to send"},
                    **_errors(400, 401, 403, 404, 429),
                },
            },
        },
        f"{run}/events": {
            "get": {
                "operationId": "runs_events",
                "tags": ["runs"],
                "summary": "Attach to a run: replay, then live",
                "parameters": [run_id, *LAST_EVENT_ID],
                "responses": {
                    "200": _stream_response(),
                    "204": {"description": "Finished, nothing left to send"},
                    **_errors(400, 401, 403, 404, 429),
                },
            }
        },
        run: {
            "get": {
                "operationId": "runs_status",
                "tags": ["runs"],
                "summary": "A run's status and result",
                "parameters": [run_id],
                "responses": {
                    "200": {
                        "description": "The run",
                        "content": {"application/json": {"schema": _ref("RunState")}},
                    },
                    **_errors(404),
                },
            }
        },
        f"{run}/cancel": {
            "post": {
                "operationId": "runs_cancel_sse",
                "tags": ["runs"],
                "summary": "Stop a run",
                "parameters": [run_id],
                "responses": {
                    "202": {
                        "description": "Cancelling",
                        "content": {"application/json": {"schema": _ref("RunState")}},
                    },
                    "200": {
                        "description": "Already finished",
                        "content": {"application/json": {"schema": _ref("RunState")}},
                    },
                    **_errors(403, 404),
                },
            }
        },
    }


def add_sse_endpoints(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook."""
    try:
        execute = url_template("nexus_sse:execute", "{name}", example="NAME")
        run = url_template("nexus_sse:run-detail", "{run_id}")
    except NoReverseMatch:
        return result
    result.setdefault("paths", {}).update(_paths(execute, run))
    result.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)
    return result
