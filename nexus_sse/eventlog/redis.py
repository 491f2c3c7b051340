"""Redis Streams event log: several processes (and machines) share runs.

- One stream per run, ``<prefix>run:<id>``, entry ids ``0-<seq>``: ``XADD`` appends (one round trip,
  with the retention ``EXPIRE`` in the same pipeline), ``XREAD BLOCK`` from ``0-<cursor>`` follows (the
  server wakes us; no polling) — one per run and process, shared by the run's streams in it (``_Tail``)
  —, ``XRANGE``/``XREVRANGE`` read.
- Retention: at most ``MAXLEN`` events per run (older ones are trimmed and replayed from the database
  archive), kept ``MAX_AGE_SECONDS`` after the last append, ``EVENT_LOG_RETENTION_SECONDS`` after the end.
- Liveness: each process refreshes ``<prefix>executor:<id>`` (TTL ``HEARTBEAT_SECONDS``); a run whose
  executor's key is gone was interrupted.
- Subscribers: a hash per run, one field per process, so a dead process's streams stop counting.
- Cancel: a flag per run that the executing process's watchdog reads.

Options (``NEXUS_SSE["EVENT_LOG_OPTIONS"]``): ``URL`` (``redis://127.0.0.1:6379/0``), ``PREFIX``
(``nexus_sse:``), ``MAXLEN`` (100000), ``MAX_AGE_SECONDS`` (86400), ``HEARTBEAT_SECONDS`` (10).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

from django.core.checks import Error

from nexus_sse import conf, sse
from nexus_sse.eventlog.base import (
    EXECUTOR_ID,
    READ_BATCH,
    BaseEventLog,
    LogEvent,
    SequenceConflict,
    Waiters,
)
from nexus_sse.exceptions import EventLogUnavailable

logger = logging.getLogger("nexus_sse.eventlog.redis")

#: longest single blocking XREAD, below redis-py's default 5 s socket timeout
BLOCK_SLICE = 3.0

T = TypeVar("T")
P = ParamSpec("P")
Log = TypeVar("Log", bound="RedisEventLog")


def _unavailable(
    method: Callable[Concatenate[Log, P], Awaitable[T]],
) -> Callable[Concatenate[Log, P], Coroutine[Any, Any, T]]:
    """Turn any Redis failure of ``method`` into one EventLogUnavailable naming the server."""

    @functools.wraps(method)
    async def wrapper(self: Log, *args: P.args, **kwargs: P.kwargs) -> T:
        from redis.exceptions import RedisError

        try:
            return await method(self, *args, **kwargs)
        except RedisError as exc:
            # the details (redis-py's text) go to the log; clients read where, never credentials
            logger.warning("Redis at %s failed in %s: %s", self.where, method.__name__, exc)
            raise EventLogUnavailable(
                f"The event log is unavailable: Redis at {self.where} failed ({type(exc).__name__})."
            ) from exc

    return wrapper


def _refused_id(exc: Exception) -> bool:
    """Whether XADD refused the id: not above the stream's last (a seq conflict, not a failure)."""
    from redis.exceptions import ResponseError  # local: redis is an optional dependency

    return isinstance(exc, ResponseError) and "equal or smaller" in str(exc)


class _Tail:
    """The one blocking read of a run's stream in this process and event loop, shared by its streams.

    Were each stream to block on an XREAD of its own, every append would wake all of them, and each
    would come back with one event: a run followed by N streams here cost N round trips per event
    (docs/performance.md, "The Redis event log"). Streams caught up with the run wait on this
    reader instead; one behind it (a replay, a slow reader) reads directly until it has caught up. It
    keeps the run's newest READ_BATCH events for streams a little behind, and stops once the run has
    ended, or once nobody waited during a whole blocking read (the next wait starts another)."""

    def __init__(self, log: RedisEventLog, run_id: str, after: int) -> None:
        self.log, self.run_id = log, run_id
        self.head = after  # the seq of the last event read
        self.events: list[LogEvent] = []  # the newest ones, ending at head
        self.waiters = Waiters()
        self.error: BaseException | None = None
        self.ended = False
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(self.follow())

    def after(self, seq: int) -> list[LogEvent] | None:
        """The events after ``seq`` this reader holds ([] if none yet; None: ``seq`` is behind them)."""
        start = self.head - len(self.events) + 1
        if seq + 1 < start:
            return None
        return self.events[seq + 1 - start :][:READ_BATCH]

    async def wait(self, seconds: float | None) -> bool:
        """Wait for the next events (False: ``seconds`` passed, or this reader stopped)."""
        if self.error is not None:
            raise self.error
        if self.ended or (seconds is not None and seconds <= 0):
            return False
        fut, timer = self.waiters.park(self.loop, seconds)
        try:
            await fut
        finally:
            self.waiters.unpark(fut, timer)
        if self.error is not None:
            raise self.error
        return not self.ended or bool(self.events)

    async def follow(self) -> None:
        try:
            while True:
                events = await self.log.read_blocking(self.run_id, self.head, BLOCK_SLICE)
                if events:
                    self.events.extend(events)
                    del self.events[:-READ_BATCH]
                    self.head = events[-1].seq
                    self.waiters.wake()
                    if events[-1].terminal:
                        return
                elif not self.waiters:
                    return
        except Exception as exc:  # Redis failed: every waiter raises it (as EventLogUnavailable)
            self.error = exc
        finally:
            self.ended = True
            self.log.tail_ended(self)
            self.waiters.wake()


class RedisEventLog(BaseEventLog):
    """Per-run Redis Streams, shared by every process pointing at the same Redis."""

    shared = True

    def __init__(self, **options: Any) -> None:
        self.url = options.get("URL", "redis://127.0.0.1:6379/0")
        self.prefix = options.get("PREFIX", "nexus_sse:")
        self.maxlen = int(options.get("MAXLEN", 100_000))
        self.max_age = int(options.get("MAX_AGE_SECONDS", 86_400))
        self.heartbeat = float(options.get("HEARTBEAT_SECONDS", 10.0))
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        self._heartbeats: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._subscribers: dict[str, int] = {}
        self._announced: set[asyncio.AbstractEventLoop] = set()
        #: the shared reader of each run followed here, per event loop
        self._tails: dict[asyncio.AbstractEventLoop, dict[str, _Tail]] = {}
        parts = urlsplit(self.url)
        # host:port or the socket path; never the user name or password of the URL
        self.where = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else (parts.path or self.url)

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> list:
        try:
            import redis.asyncio  # noqa: F401  (is the client installed?)
        except ImportError:
            return [
                Error(
                    "NEXUS_SSE['EVENT_LOG'] is 'redis' but the redis package is not installed.",
                    hint="pip install redis",
                    id="nexus_sse.E008",
                )
            ]
        unknown = set(options) - {"URL", "PREFIX", "MAXLEN", "MAX_AGE_SECONDS", "HEARTBEAT_SECONDS"}
        if unknown:
            return [
                Error(
                    f"Unknown NEXUS_SSE['EVENT_LOG_OPTIONS'] keys for redis: {sorted(unknown)}",
                    id="nexus_sse.E008",
                )
            ]
        return []

    # -- connections ---------------------------------------------------------------------------
    def _redis(self) -> Any:
        """A client for the running loop (asyncio clients cannot cross loops), heartbeat started."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            import redis.asyncio as aioredis

            client = self._clients[loop] = aioredis.Redis.from_url(self.url, max_connections=None)
            self._heartbeats[loop] = loop.create_task(self._beat(client), name="nexus_sse heartbeat")
        return client

    @_unavailable
    async def announce(self) -> None:
        loop = asyncio.get_running_loop()
        if loop not in self._announced:
            await self._redis().set(self._key("executor", EXECUTOR_ID), "1", px=int(self.heartbeat * 1000))
            self._announced.add(loop)

    async def _beat(self, client: Any) -> None:
        key = self._key("executor", EXECUTOR_ID)
        while True:
            try:
                await client.set(key, "1", px=int(self.heartbeat * 1000))
            except Exception as exc:  # Redis away: try again next beat
                logger.warning("heartbeat to Redis failed: %s", exc)
            await asyncio.sleep(self.heartbeat / 3)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _stream(self, run_id: str) -> str:
        return self._key("run", run_id)

    @staticmethod
    def _event(run_id: str, entry_id: bytes, fields: dict[bytes, bytes]) -> LogEvent:
        return LogEvent(run_id, int(entry_id.split(b"-")[1]), fields[b"e"].decode(), fields[b"d"].decode())

    # -- the log -------------------------------------------------------------------------------
    @_unavailable
    async def append(self, run_id: str, event: str, data: dict[str, Any], seq: int | None = None) -> LogEvent:
        client = self._redis()
        key = self._stream(run_id)
        if seq is None:
            last = await self.last_event(run_id)
            seq = (last.seq if last else 0) + 1
        item = LogEvent(run_id, seq, event, sse.dumps(data))
        async with client.pipeline(transaction=False) as pipe:
            pipe.xadd(
                key, {"e": event, "d": item.data_json}, id=f"0-{seq}", maxlen=self.maxlen, approximate=True
            )
            pipe.expire(key, self.max_age)
            try:
                await pipe.execute()
            except Exception as exc:
                if not _refused_id(exc):
                    raise
                raise SequenceConflict(f"run {run_id}: seq {seq} is not after its last event") from exc
        return item

    @_unavailable
    async def read_after(self, run_id: str, seq: int) -> list[LogEvent]:
        entries = await self._redis().xrange(self._stream(run_id), min=f"(0-{seq}", max="+")
        return [self._event(run_id, entry_id, fields) for entry_id, fields in entries]

    @_unavailable
    async def wait_after(
        self,
        run_id: str,
        seq: int,
        timeout: float | None,  # noqa: ASYNC109  (a timer, not asyncio.timeout: Waiters)
    ) -> list[LogEvent]:
        from nexus_sse.shutdown import draining

        if draining():  # blocking reads are short while the process drains
            timeout = min(timeout or 0.2, 0.2)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        tails = self._tails.setdefault(loop, {})
        while True:
            tail = tails.get(run_id)
            events = None if tail is None else tail.after(seq)
            if events:
                return events
            if tail is None or events is None:  # no reader of this run here, or we are behind it
                events = await self.read_batch(run_id, seq)
                if events:
                    return events
                tail = tails.get(run_id)  # (another stream may have started one meanwhile)
                if tail is None:
                    tail = tails[run_id] = _Tail(self, run_id, seq)
            # caught up with the run's shared reader: wait for it
            if not await tail.wait(None if deadline is None else deadline - loop.time()):
                return []

    async def read_batch(self, run_id: str, seq: int) -> list[LogEvent]:
        """Up to READ_BATCH events after ``seq``, without waiting."""
        entries = await self._redis().xrange(self._stream(run_id), min=f"(0-{seq}", max="+", count=READ_BATCH)
        return [self._event(run_id, entry_id, fields) for entry_id, fields in entries]

    async def read_blocking(self, run_id: str, seq: int, seconds: float) -> list[LogEvent]:
        """Events after ``seq``, waiting up to ``seconds`` for the first (at most BLOCK_SLICE: redis-py
        gives every command a socket timeout, 5 s by default, blocking reads included)."""
        reply = await self._redis().xread(
            {self._stream(run_id): f"0-{seq}"},
            count=READ_BATCH,
            block=max(1, int(min(seconds, BLOCK_SLICE) * 1000)),
        )
        return [self._event(run_id, entry_id, fields) for entry_id, fields in reply[0][1]] if reply else []

    @_unavailable
    async def last_event(self, run_id: str) -> LogEvent | None:
        entries = await self._redis().xrevrange(self._stream(run_id), max="+", min="-", count=1)
        return self._event(run_id, *entries[0]) if entries else None

    # -- presence, liveness, control -----------------------------------------------------------
    @_unavailable
    async def add_subscriber(self, run_id: str) -> None:
        self._subscribers[run_id] = self._subscribers.get(run_id, 0) + 1
        await self._publish_subscribers(run_id)

    @_unavailable
    async def remove_subscriber(self, run_id: str) -> None:
        count = self._subscribers.get(run_id, 0) - 1
        if count <= 0:
            self._subscribers.pop(run_id, None)
        else:
            self._subscribers[run_id] = count
        await self._publish_subscribers(run_id)

    async def _publish_subscribers(self, run_id: str) -> None:
        key = self._key("subs", run_id)
        count = self._subscribers.get(run_id, 0)
        async with self._redis().pipeline(transaction=False) as pipe:
            if count:
                pipe.hset(key, EXECUTOR_ID, count)
            else:
                pipe.hdel(key, EXECUTOR_ID)
            pipe.expire(key, self.max_age)
            await pipe.execute()

    @_unavailable
    async def subscriber_count(self, run_id: str) -> int:
        counts = await self._redis().hgetall(self._key("subs", run_id))
        total = 0
        for process, count in counts.items():
            name = process.decode()
            if name == EXECUTOR_ID or await self.executor_alive(name):
                total += int(count)
        return total

    @_unavailable
    async def executor_alive(self, executor_id: str) -> bool:
        if executor_id == EXECUTOR_ID:
            return True
        return bool(await self._redis().exists(self._key("executor", executor_id)))

    @_unavailable
    async def request_cancel(self, run_id: str) -> bool:
        await self._redis().set(self._key("cancel", run_id), "1", ex=self.max_age)
        return True

    @_unavailable
    async def cancel_requested(self, run_id: str) -> bool:
        return bool(await self._redis().exists(self._key("cancel", run_id)))

    @_unavailable
    async def finished(self, run_id: str) -> None:
        retention = int(max(1, conf.get("EVENT_LOG_RETENTION_SECONDS")))
        async with self._redis().pipeline(transaction=False) as pipe:
            pipe.expire(self._stream(run_id), retention)
            pipe.delete(self._key("cancel", run_id))
            await pipe.execute()

    @_unavailable
    async def ping(self) -> None:
        await self._redis().ping()

    def tail_ended(self, tail: _Tail) -> None:
        """Forget a shared reader that stopped (the next wait starts another)."""
        tails = self._tails.get(tail.loop, {})
        if tails.get(tail.run_id) is tail:
            del tails[tail.run_id]

    async def close(self) -> None:
        """Stop the heartbeats and shared readers and close the clients of every event loop.

        The running loop's close here, those of a loop running in another thread close there.
        A closed loop's tasks ended with it: its client is dropped (no loop runs its sockets)."""
        running = asyncio.get_running_loop()
        for loop in {*self._clients, *self._heartbeats, *self._tails}:
            if loop is running:
                await self._close_loop(loop)
            elif loop.is_running():
                done = asyncio.run_coroutine_threadsafe(self._close_loop(loop), loop)
                await asyncio.wrap_future(done)
            else:
                self._forget(loop)
        self._announced.clear()

    def _forget(self, loop: asyncio.AbstractEventLoop) -> tuple[Any, list[asyncio.Task[None]]]:
        """Drop a loop's client, heartbeat and readers; return the client and the tasks."""
        tasks = [tail.task for tail in self._tails.pop(loop, {}).values()]
        heartbeat = self._heartbeats.pop(loop, None)
        if heartbeat is not None:
            tasks.append(heartbeat)
        return self._clients.pop(loop, None), tasks

    async def _close_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        client, tasks = self._forget(loop)
        for task in tasks:
            task.cancel()
        # (their connections are back in the pool, or dropped, before the pool closes)
        await asyncio.gather(*tasks, return_exceptions=True)
        if client is not None:
            await client.aclose()
