"""Rate limits on starting runs, with DRF's throttle machinery (its cache-backed sliding window)."""

from __future__ import annotations

from typing import Any, cast

from rest_framework.throttling import SimpleRateThrottle


class WorkflowRunThrottle(SimpleRateThrottle):
    """Limit runs of one workflow per user (per client IP when anonymous) to ``rate`` ("10/min")."""

    scope = "nexus_sse_runs"

    def __init__(self, rate: str, workflow: str, user: Any) -> None:
        self.rate = rate
        self.workflow = workflow
        self.user = user
        self.num_requests, self.duration = self.parse_rate(rate)

    def get_ident(self, request: Any) -> str:
        """The client address. DRF's would believe any X-Forwarded-For when NUM_PROXIES is unset, so a
        client could pick a fresh address per request; only trust it when NUM_PROXIES says to."""
        from django.conf import settings

        if getattr(settings, "REST_FRAMEWORK", {}).get("NUM_PROXIES") is None:
            return request.META.get("REMOTE_ADDR", "")
        return super().get_ident(request)

    def get_cache_key(self, request: Any, view: Any) -> str:
        user = self.user
        ident = f"user:{user.pk}" if user.is_authenticated else f"ip:{self.get_ident(request)}"
        return f"nexus_sse:throttle:{self.workflow}:{ident}"


def check_rate(request: Any, user: Any, rate: str, workflow: str) -> float | None:
    """None when ``user``'s request may start a run; otherwise the seconds to wait."""
    throttle = WorkflowRunThrottle(rate, workflow, user)
    # No DRF view here: neither SimpleRateThrottle nor get_cache_key above reads it.
    if throttle.allow_request(request, cast(Any, None)):
        return None
    return throttle.wait() or 1.0
