"""Liveness (/health), readiness (/ready: database and event log) and /metrics views."""

from __future__ import annotations

import asyncio
import hmac

from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from nexus_sse import access, conf, db, metrics
from nexus_sse.eventlog import get_event_log
from nexus_sse.exceptions import NotFound, PermissionDenied
from nexus_sse.responses import error_response


async def health(request: HttpRequest) -> JsonResponse:
    """The process answers: that is all liveness means."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


async def ready(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database and the event log answer (each within 2 s)."""
    checks: dict[str, str] = {}
    for name, probe in (("database", db.call(_database_ok)), ("event_log", get_event_log().ping())):
        try:
            await asyncio.wait_for(probe, 2.0)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


async def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, when METRICS_ENABLED: to ``Authorization: Bearer <METRICS_TOKEN>``, or
    to staff users when no token is set."""
    if not conf.get("METRICS_ENABLED"):
        return error_response(NotFound("metrics are disabled"))
    token = conf.get("METRICS_TOKEN")
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        allowed = hmac.compare_digest(sent.encode(), str(token).encode())
    else:
        auth = None if "Authorization" in request.headers else await access.authenticate(request)
        allowed = bool(auth and auth.user.is_staff)
    if not allowed:
        return error_response(PermissionDenied("not allowed"))
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")
