"""Async views of the wire contract: execute (POST/GET), run events, run status, cancel."""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from nexus_sse import access, conf, metrics, payload, registry, runs, shutdown, store
from nexus_sse.enums import EventType, RunMode
from nexus_sse.exceptions import ERROR_TYPES, InternalError, NexusError, NotFound, ValidationError
from nexus_sse.models import Run, Workflow
from nexus_sse.responses import error_response
from nexus_sse.resume import Source, resume
from nexus_sse.streaming import archive_stream, run_stream
from nexus_sse.workflows.schema import validate_inputs

logger = logging.getLogger("nexus_sse.views")

#: an async view (Django's ``path`` accepts it; run streams are StreamingHttpResponses)
View = Callable[..., Coroutine[Any, Any, HttpResponseBase]]


def api_view(*methods: str, streams: bool = False) -> Callable[[View], View]:
    """Allow ``methods``; turn NexusError into its JSON error and anything else into a masked 500.

    ``streams``: the view streams a run (execute, run events). Those are refused while this process
    drains (clients go to another), and the fast path (asgi.py) serves them: it looks for the view's
    ``nexus_streams`` attribute."""

    def decorate(view: View) -> View:
        @csrf_exempt  # enforced by access.enforce_csrf for session-authenticated POSTs only
        @functools.wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if request.method not in methods:
                response = JsonResponse(
                    {"error": f"method {request.method} not allowed", "error_type": "ValidationError"},
                    status=405,
                )
                response["Allow"] = ", ".join(methods)
                return response
            if streams and shutdown.draining():
                response = error_response(InternalError("This server is shutting down; retry on another."))
                response.status_code = 503
                response["Retry-After"] = "1"
                return response
            try:
                access.enforce_csrf(request)
                return await view(request, *args, **kwargs)
            except NexusError as exc:
                return error_response(exc)
            except Exception as exc:
                logger.exception("unexpected error in %s", view.__name__)
                detail = f"{type(exc).__name__}: {exc}" if conf.expose_errors() else None
                return error_response(InternalError(detail))

        wrapper.nexus_streams = streams  # type: ignore[attr-defined]
        return wrapper

    return decorate


def wants_stream(request: HttpRequest, mode: str | None) -> bool:
    if mode is not None:
        return mode == RunMode.STREAM
    return "text/event-stream" in request.META.get("HTTP_ACCEPT", "")


async def get_workflow(name: str) -> Workflow:
    # No slug holds NUL, and PostgreSQL refuses it in a query (a 500): answer without asking.
    workflow = None if "\x00" in name else await registry.active_workflow(name)
    if workflow is None:
        raise NotFound(f"no active workflow named {name!r}")
    return workflow


async def get_run(request: HttpRequest, run_id: str | uuid.UUID) -> Run:
    try:
        run_id = uuid.UUID(str(run_id))
    except ValueError:
        raise NotFound("no such run") from None
    await runs.recover_interrupted_once()  # after a restart, no run may look alive forever
    run = await store.get_run(run_id)
    if run is None:
        # A run of this process may not be written yet (the in-memory log writes it with its
        # first batch of events, within ARCHIVE_INTERVAL_SECONDS).
        executor = runs.local_executor(str(run_id))
        if executor is None:
            raise NotFound("no such run")
        run = executor.run
    await access.authorize_run(request, run)
    return run


def run_urls(request: HttpRequest, run_id: str) -> dict[str, str]:
    namespace = request.resolver_match.namespace if request.resolver_match else "nexus_sse"
    return {
        "events_url": reverse(f"{namespace}:run-events", args=[run_id]),
        "status_url": reverse(f"{namespace}:run-detail", args=[run_id]),
    }


@api_view("GET", "POST", streams=True)
async def execute(request: HttpRequest, name: str) -> HttpResponseBase:
    """Start a run of workflow ``name`` (or resume one, given Last-Event-ID) and stream or return it."""
    requested_at = time.perf_counter()
    cursor = payload.last_event_id(request)
    if cursor is not None:
        metrics.resumes.inc()
        run = await get_run(request, cursor[0])
        if run.workflow.slug != name:
            raise NotFound(f"run {cursor[0]} is not a run of {name!r}")
        return await attach(request, run, cursor[1])

    workflow = await get_workflow(name)
    user = await access.authorize_execute(request, workflow)
    graph = registry.graph_for(workflow)
    if request.method == "POST":
        inputs, mode = payload.execute_body(payload.read_json_body(request))
    else:
        inputs, mode = payload.query_inputs(request, graph.input_schema), RunMode.STREAM
        if request.GET.get("mode") not in (None, RunMode.STREAM):
            raise ValidationError("GET always streams; use POST for mode sync or async", path="mode")
    validate_inputs(graph.input_schema, inputs)
    stream = request.method == "GET" or wants_stream(request, mode)
    run_mode = RunMode.STREAM if stream else (mode or RunMode.SYNC)
    release = access.acquire_stream(request) if stream else None
    try:
        run = await start_run(name, workflow, graph, inputs, user, run_mode)
    except BaseException:
        if release is not None:
            release()
        raise
    run_id = str(run.pk)
    if stream:
        return run_stream(
            run_id, 0, request=request, on_close=[release], executor=run.executor, requested_at=requested_at
        )
    if run_mode == RunMode.ASYNC:
        return JsonResponse({"run_id": run_id, "status": "pending", **run_urls(request, run_id)}, status=202)
    end = await runs.wait_for_end(run_id)
    data = end.data
    if end.event == EventType.ERROR:
        error_cls = ERROR_TYPES.get(data["error_type"], InternalError)
        return error_response(error_cls(data["error"]), run_id=run_id)
    return JsonResponse(
        {
            "run_id": run_id,
            "workflow_id": workflow.slug,
            "version": workflow.version,
            "status": Run.Status.COMPLETED,
            "result": data["result"],
            "outputs": data["outputs"],
            "execution_time": data["execution_time"],
        }
    )


async def start_run(name: str, workflow: Workflow, graph: Any, inputs: dict, user: Any, mode: str) -> Run:
    try:
        return await runs.start(workflow, graph, inputs, user=user, mode=mode)
    except IntegrityError:
        # The cached row was deleted (and maybe re-created) by another process: look again.
        registry.forget_workflow()
        workflow = await get_workflow(name)
        graph = registry.graph_for(workflow)
        validate_inputs(graph.input_schema, inputs)
        return await runs.start(workflow, graph, inputs, user=user, mode=mode)


async def attach(request: HttpRequest, run: Run, after: int) -> HttpResponseBase:
    """Stream a run's events after seq ``after``, as resume decides: from the log or the archive."""
    run_id = str(run.pk)
    how = await resume(run, after)
    if how.source is Source.NOTHING:
        return HttpResponse(status=204)
    if how.source is Source.ARCHIVE:
        return archive_stream(run_id, how.first, request=request)
    return run_stream(
        run_id, after, request=request, on_close=[access.acquire_stream(request)], executor=run.executor
    )


@api_view("GET", streams=True)
async def run_events(request: HttpRequest, run_id: str) -> HttpResponseBase:
    """Attach to a run: replay its events (after Last-Event-ID, if given), then follow it live."""
    run = await get_run(request, run_id)
    cursor = payload.last_event_id(request)
    after = 0
    if cursor is not None:
        metrics.resumes.inc()
        if cursor[0] != str(run.pk):
            raise ValidationError("Last-Event-ID belongs to another run", path="Last-Event-ID")
        after = cursor[1]
    return await attach(request, run, after)


def run_json(request: HttpRequest, run: Run) -> dict[str, Any]:
    run_id = str(run.pk)
    return {
        "run_id": run_id,
        "workflow_id": run.workflow.slug,
        "version": run.workflow_version,
        "status": run.status,
        "mode": run.mode,
        "inputs": run.inputs,
        "result": run.result,
        "outputs": run.outputs,
        "error": run.error or None,
        "error_type": run.error_type or None,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "execution_time": run.execution_time,
        **run_urls(request, run_id),
    }


@api_view("GET")
async def run_detail(request: HttpRequest, run_id: str) -> HttpResponse:
    """A run's status and result."""
    return JsonResponse(run_json(request, await get_run(request, run_id)))


@api_view("POST")
async def run_cancel(request: HttpRequest, run_id: str) -> HttpResponse:
    """Stop a run; its stream ends with an ``error`` event of type CancelledError."""
    run = await get_run(request, run_id)
    status = await runs.cancel(run)
    return JsonResponse(
        {"run_id": str(run.pk), "status": status}, status=202 if status == "cancelling" else 200
    )
