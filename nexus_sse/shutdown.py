"""Graceful shutdown: on SIGTERM, streams end cleanly and clients resume elsewhere.

The first stream installs a SIGTERM handler in front of the server's own (uvicorn's, daphne's), from
``RunFollower.start``; nexus_sse/follower.py says why there. On
SIGTERM: the process is *draining* — open streams end with a ``retry:`` hint and no terminal event (the
client reconnects with Last-Event-ID, to another process behind the load balancer), new stream and
execute requests get 503 with Retry-After, and runs executing here get SHUTDOWN_GRACE_SECONDS to finish
(their events reach every follower through the shared log). Then the server's handler runs and it stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from typing import Any

from nexus_sse import conf

logger = logging.getLogger("nexus_sse.shutdown")

_installed = False
_draining: asyncio.Event | None = None


def draining() -> bool:
    return _draining is not None and _draining.is_set()


def drain_event() -> asyncio.Event:
    global _draining
    if _draining is None:
        _draining = asyncio.Event()
    return _draining


def install() -> None:
    """Put our SIGTERM handler in front of the server's (main thread only; once per process)."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    drain_event()

    def on_sigterm(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(_start_drain, loop, previous, signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)


def _start_drain(loop: asyncio.AbstractEventLoop, previous: Any, signum: int, frame: Any) -> None:
    if draining():
        return
    logger.warning(
        "SIGTERM: draining (streams end with a retry hint; runs get %ss to finish)",
        conf.get("SHUTDOWN_GRACE_SECONDS"),
    )
    drain_event().set()
    from nexus_sse.eventlog import get_event_log

    get_event_log().wake_all()
    loop.create_task(_finish_then_stop(previous, signum, frame))


async def _finish_then_stop(previous: Any, signum: int, frame: Any) -> None:
    from nexus_sse import runs

    tasks = runs.running_tasks()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=conf.get("SHUTDOWN_GRACE_SECONDS"))
        if pending:
            logger.warning(
                "%d run(s) still going after the grace period: they will be interrupted", len(pending)
            )
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
