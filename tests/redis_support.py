"""Redis for tests: fail under CI when it is missing, skip (saying how to enable) elsewhere."""

from __future__ import annotations

import os
import uuid

from tests.services import missing

URL = os.environ.get("NEXUS_SSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require_redis() -> str:
    import redis

    try:
        redis.Redis.from_url(URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        missing(
            f"Redis is not reachable at {URL} ({exc}); start redis-server or set NEXUS_SSE_TEST_REDIS_URL"
        )
    return URL


def redis_overrides(**extra) -> dict:
    """NEXUS_SSE for a server on the Redis log, under a prefix of its own (tests never collide)."""
    return {
        "EVENT_LOG": "redis",
        "EVENT_LOG_OPTIONS": {
            "URL": URL,
            "PREFIX": f"nexus_test_{uuid.uuid4().hex[:8]}:",
            "HEARTBEAT_SECONDS": 1.0,
        },
        **extra,
    }
