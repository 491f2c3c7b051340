"""SSE load generator: raw asyncio HTTP/1.1 in one process, no HTTP library in the way.

Prints one JSON line with the figures. Every mode reports the CPU this process used during the
measured window (``client_cpu_pct``: 100 = one core) and, given ``--server-pid``, the server's
(``server_cpu_pct``), so a run shows whether the client or the server was the bottleneck.

Modes:
  exec    executions/s and time to first event: each worker POSTs, reads the stream to its end, again
  tokens  events/s of one long stream
  idle    open streams in stages (--n 1000,5000), print {"ready": n} after each, go on at a stdin line
  fanout  N subscribers attach to one gated run, open the gate, report events/s delivered and the lag
  slow    read one stream at --rate bytes/s for --duration s; sample the server's RSS; see if it hangs up
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import sys
import time
from pathlib import Path

TERMINAL = (b"event: complete", b"event: error")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: no read waits longer than this: a stream that stalls fails its sample instead of hanging the run
READ_TIMEOUT = 30.0


class ServerStats:
    """CPU seconds and RSS of the server process, read from /proc (Linux)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid

    def cpu(self) -> float | None:
        if not self.pid:
            return None
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime, in clock ticks

    def rss(self) -> int | None:
        if not self.pid:
            return None
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None


class Window:
    """The measured window: wall time and both processes' CPU."""

    def __init__(self, stats: ServerStats) -> None:
        self.stats = stats
        self.wall, self.cpu, self.server_cpu = time.perf_counter(), time.process_time(), stats.cpu()

    def close(self) -> dict:
        wall = time.perf_counter() - self.wall
        out = {"seconds": wall, "client_cpu_pct": 100 * (time.process_time() - self.cpu) / wall}
        server_cpu = self.stats.cpu()
        if server_cpu is not None:
            out["server_cpu_pct"] = 100 * (server_cpu - self.server_cpu) / wall
        return out


def request(args, method: str = "POST", path: str | None = None, headers: str = "") -> bytes:
    path = path or args.path
    body = args.body.encode() if method == "POST" else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\nAccept: text/event-stream\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    )
    return head.encode() + body


class Body:
    """Incremental decoder of one HTTP/1.1 response body: chunked, Content-Length, or up to EOF.

    Chunk boundaries mean nothing in HTTP: a server may split an event anywhere (nexus_sse's batched
    writes do), so every mode scans the *decoded* payload, never the raw bytes.
    """

    def __init__(self, head: bytes) -> None:
        lower = head.lower()
        self.chunked = b"\r\ntransfer-encoding: chunked" in lower
        length = re.search(rb"\r\ncontent-length:\s*(\d+)", lower)
        self.remaining = int(length.group(1)) if length and not self.chunked else None
        self.keep_alive = b"\r\nconnection: close" not in lower and (
            self.chunked or self.remaining is not None
        )
        self.need = self.skip = 0  # payload bytes left in this chunk; CRLF bytes to skip after it
        self.pending, self.last, self.done, self.size = b"", False, False, 0

    def feed(self, data: bytes) -> bytes:
        if not self.chunked:
            if self.remaining is not None:
                data = data[: self.remaining]
                self.remaining -= len(data)
                self.done = self.remaining == 0
            self.size += len(data)
            return data
        buf = self.pending + data if self.pending else data
        self.pending, out, i, n = b"", [], 0, len(buf)
        while i < n and not self.done:
            if self.need:
                take = min(self.need, n - i)
                out.append(buf[i : i + take])
                i += take
                self.need -= take
                if not self.need:
                    self.skip = 2
            elif self.skip:
                take = min(self.skip, n - i)
                i += take
                self.skip -= take
                self.done = self.last and not self.skip
            else:
                j = buf.find(b"\r\n", i)
                if j < 0:
                    self.pending = buf[i:]
                    break
                size = int(buf[i:j].split(b";", 1)[0], 16)
                i = j + 2
                if size:
                    self.need = size
                else:  # the last chunk; then one CRLF (no trailers expected)
                    self.last, self.skip = True, 2
        payload = b"".join(out)
        self.size += len(payload)
        return payload


class Scan:
    """Counts a marker in a decoded stream as it arrives, a marker split between reads counted once."""

    def __init__(self, marker: bytes) -> None:
        self.marker, self.keep, self.carry, self.count = marker, len(marker) - 1, b"", 0

    def feed(self, data: bytes) -> int:
        joined = self.carry + data
        found = joined.count(self.marker)
        self.count += found
        self.carry = joined[-self.keep :]
        return found


def head_ok(head: bytes) -> None:
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode(errors="replace"))


async def open_stream(args, data: bytes):
    reader, writer = await asyncio.open_connection(args.host, args.port)
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    head_ok(head)
    return reader, writer, Body(head)


async def read_until(reader, body: Body, marker: bytes, limit: int = 1 << 20) -> bytes:
    """Decoded payload up to and including ``marker`` (and whatever came with it)."""
    got = b""
    while marker not in got:
        chunk = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT)
        if not chunk:
            raise RuntimeError(f"stream ended before {marker!r}")
        got += body.feed(chunk)
        if len(got) > limit:
            raise RuntimeError(f"no {marker!r} in the first {limit} bytes")
    return got


async def read_to_end(reader, body: Body, on_data=None) -> bytes:
    """Read the response body to its end; return the decoded tail (to check the terminal event)."""
    tail = b""
    while not body.done:
        chunk = await asyncio.wait_for(reader.read(65536), READ_TIMEOUT)
        if not chunk:
            break
        data = body.feed(chunk)
        if data:
            if on_data:
                on_data(data)
            tail = data[-2048:] if len(data) >= 2048 else (tail + data)[-2048:]
    return tail


def ended(tail: bytes) -> bool:
    """Whether a decoded stream's tail holds its terminal event (complete or error)."""
    return any(t in tail for t in TERMINAL)


async def mode_exec(args, stats):
    data = request(args)
    ttfe, total, errors, sizes = [], [], [], []

    async def worker(stop, record):
        conn = None
        while time.perf_counter() < stop:
            try:
                began = time.perf_counter()
                if conn is None:
                    conn = await asyncio.open_connection(args.host, args.port)
                reader, writer = conn
                writer.write(data)
                head = await reader.readuntil(b"\r\n\r\n")
                head_ok(head)
                body, start, first = Body(head), Scan(b"event: start"), []

                def seen(chunk, start=start, first=first):
                    if not first and start.feed(chunk):
                        first.append(time.perf_counter())

                tail = await read_to_end(reader, body, seen)
                if not ended(tail):
                    raise RuntimeError("stream ended without complete/error")
                if not body.keep_alive:
                    writer.close()
                    conn = None
                if record:
                    ttfe.append(first[0] - began if first else None)
                    total.append(time.perf_counter() - began)
                    sizes.append(body.size)
            except Exception as exc:
                if record:
                    errors.append(f"{type(exc).__name__}: {exc}")
                if conn is not None:
                    conn[1].close()
                conn = None

    await asyncio.gather(*[worker(time.perf_counter() + args.warmup, False) for _ in range(args.concurrency)])
    window = Window(stats)
    await asyncio.gather(*[worker(window.wall + args.duration, True) for _ in range(args.concurrency)])
    measured = window.close()
    firsts = sorted(t for t in ttfe if t is not None)
    server_cpu_s = measured.get("server_cpu_pct", 0) / 100 * measured["seconds"]
    return {
        "executions_per_s": len(total) / measured["seconds"],
        # per second of the server's CPU: steadier than per second of wall time on a busy machine
        "executions_per_cpu_s": len(total) / server_cpu_s if server_cpu_s > 0 else None,
        "ttfe_p50_ms": 1000 * statistics.median(firsts) if firsts else None,
        "ttfe_p99_ms": 1000 * firsts[int(0.99 * (len(firsts) - 1))] if firsts else None,
        "bytes_per_exec": statistics.median(sizes) if sizes else None,
        "completed": len(total),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        **measured,
    }


class Counter(asyncio.Protocol):
    """Counts ``event: token`` in a response as it arrives, with no await per chunk: the cheapest reader."""

    def __init__(self, data: bytes) -> None:
        self.data, self.raw, self.body, self.tail = data, b"", None, b""
        self.tokens = Scan(b"event: token")
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        transport.write(self.data)

    def data_received(self, chunk: bytes) -> None:
        if self.body is None:  # still reading the response head
            self.raw += chunk
            end = self.raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head, chunk = self.raw[: end + 4], self.raw[end + 4 :]
            try:
                head_ok(head)
            except RuntimeError as exc:
                self.done.set_exception(exc)
                return
            self.body = Body(head)
        data = self.body.feed(chunk)
        self.tokens.feed(data)
        self.tail = data[-2048:] if len(data) >= 2048 else (self.tail + data)[-2048:]
        if self.body.done and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def mode_tokens(args, stats):
    window = Window(stats)
    transport, counter = await asyncio.get_running_loop().create_connection(
        lambda: Counter(request(args)), args.host, args.port
    )
    await asyncio.wait_for(counter.done, 120)
    measured = window.close()
    transport.close()
    if not ended(counter.tail):
        raise RuntimeError("token stream ended without complete/error")
    tokens = counter.tokens.count
    missing = args.expect - tokens if args.expect else 0
    return {
        "events_per_s": tokens / measured["seconds"],
        "events": tokens,
        "missing": missing,
        "errors": int(missing != 0),
        "bytes_per_event": counter.body.size / max(tokens, 1),
        **measured,
    }


async def mode_idle(args, stats):
    data = request(args)
    streams = []
    loop = asyncio.get_running_loop()
    for target in (int(n) for n in args.n.split(",")):
        while len(streams) < target:  # in waves, so the listen backlog copes
            wave = await asyncio.gather(
                *[open_stream(args, data) for _ in range(min(250, target - len(streams)))]
            )
            for reader, _, body in wave:
                await read_until(reader, body, b"event: start")
            streams += wave
        print(json.dumps({"ready": len(streams)}), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
    for _, writer, _ in streams:
        writer.close()
    return {"closed": len(streams)}


async def mode_fanout(args, stats):
    """Subscribers attach to a run waiting on a gate file; the gate opens once all have its start."""
    data = request(args, "GET", args.path)
    attached, ends, counts, tails = [], [], [], []

    async def subscriber():
        reader, writer, body = await open_stream(args, data)
        tokens = Scan(b"event: token")
        tokens.feed(await read_until(reader, body, b"event: progress"))
        attached.append(1)
        tail = await read_to_end(reader, body, tokens.feed)
        ends.append(time.perf_counter())
        counts.append(tokens.count)
        tails.append(ended(tail))
        writer.close()

    tasks = [asyncio.ensure_future(subscriber()) for _ in range(args.n)]
    deadline = time.perf_counter() + 30
    while len(attached) < args.n:
        if time.perf_counter() > deadline or any(t.done() and t.exception() for t in tasks):
            raise RuntimeError(f"only {len(attached)} of {args.n} subscribers attached")
        await asyncio.sleep(0.005)  # polling the attach count, with a deadline
    window = Window(stats)
    await asyncio.to_thread(Path(args.gate).touch)  # off the loop, which is reading the subscribers' streams
    await asyncio.gather(*tasks)
    measured = window.close()
    expect = args.expect or max(counts)
    return {
        "events_per_s": sum(counts) / (max(ends) - window.wall),
        "lag_s": max(ends) - min(ends),
        "first_done_s": min(ends) - window.wall,
        "last_done_s": max(ends) - window.wall,
        "subscribers": len(ends),
        "events_each_min": min(counts),
        "events_expected": expect,
        "all_complete": all(tails),
        # a subscriber that missed events, or whose stream did not end with complete/error
        "errors": sum(c != expect for c in counts) + tails.count(False),
        **measured,
    }


TCP_STATES = {
    "01": "ESTABLISHED",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0B": "CLOSING",
}


def server_side_state(server_port: int, client_port: int) -> str:
    """The TCP state of the server's end of our connection, from /proc/net/tcp (Linux, no privileges).

    The server closing the stream shows here at once (FIN_WAIT1: closed with data still queued for us),
    even when the reader is far behind and will only see the end after draining what is queued.
    """
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return TCP_STATES.get(fields[3], fields[3])
    return "GONE"  # the server aborted (RST) or the socket was fully closed


class Response:
    """An HTTP response read in raw chunks: its head held back until complete, then its body decoded."""

    def __init__(self) -> None:
        self.raw, self.body = b"", None

    def feed(self, chunk: bytes) -> bytes | None:
        """The decoded body bytes in ``chunk``; None while the head is incomplete."""
        if self.body is None:
            self.raw += chunk
            if b"\r\n\r\n" not in self.raw:
                return None
            response, chunk = self.raw.split(b"\r\n\r\n", 1)
            self.body = Body(response + b"\r\n\r\n")
        return self.body.feed(chunk)


class SlowReader:
    """One stream read through a 4 KB receive buffer, with an eye on the server's end of the connection.

    ``closed_at`` (the server's end left ESTABLISHED) and ``eof_at`` are seconds since ``start``.
    """

    def __init__(self, args) -> None:
        self.sock = sock = socket.socket()
        # a fixed receive buffer, no kernel autotuning: a truly slow reader
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((args.host, args.port))
        self.server_port, self.client_port = args.port, sock.getsockname()[1]
        sock.sendall(request(args))
        self.response = Response()
        self.start = time.perf_counter()
        self.closed_at: float | None = None
        self.eof_at: float | None = None
        self.state = "ESTABLISHED"

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def watch(self) -> None:
        """Look at the server's end of the connection, until it has left ESTABLISHED."""
        if self.closed_at is None:
            self.state = server_side_state(self.server_port, self.client_port)
            if self.state != "ESTABLISHED":
                self.closed_at = self.elapsed()

    def read_slowly(self, rate: float, duration: float, stats: ServerStats, peak):
        """Take ``rate`` bytes/s for ``duration`` s; return the bytes read, decoded tail and peak RSS."""
        got, head = 0, b""
        step = max(1, int(rate / 10))
        self.sock.settimeout(0.1)
        while self.elapsed() < duration:
            tick = time.perf_counter()
            try:
                chunk = self.sock.recv(step)
            except TimeoutError:
                chunk = None
            if chunk == b"":
                self.eof_at = self.elapsed()
                break
            if chunk:
                got += len(chunk)
                data = self.response.feed(chunk)
                if data is not None:
                    head = (head + data)[-8192:]
            peak = max(peak, stats.rss() or 0)
            self.watch()
            # pacing: this is what makes the reader slow
            time.sleep(max(0.0, 0.1 - (time.perf_counter() - tick)))
        return got, head, peak

    def drain(self, tail: bytes, seconds: float) -> tuple[int, bytes]:
        """Read the rest fast, until the stream ends or ``seconds`` pass; return the bytes and the tail."""
        drained = 0
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.settimeout(1.0)
        deadline = time.perf_counter() + seconds
        while self.eof_at is None and time.perf_counter() < deadline:
            try:
                chunk = self.sock.recv(262144)
            except TimeoutError:
                self.watch()
                continue
            if not chunk:
                self.eof_at = self.elapsed()
                break
            drained += len(chunk)
            data = self.response.feed(chunk)
            if data is None:
                continue
            tail = (tail + data)[-8192:]
            if self.response.body.done:
                self.eof_at = self.elapsed()
                break
        return drained, tail


def mode_slow(args, stats):
    """A reader with a 4 KB receive buffer taking --rate bytes/s for --duration s, then draining the rest.

    Meanwhile the server's RSS is sampled and the state of the server's end of the connection watched, so
    the result says whether and when the server ended the stream early, how many bytes the slow reader
    got, and how the stream ended once drained: a slow-reader cut-off (``:slow reader`` comment, with
    ``retry:``), a terminal event, or still open at the drain deadline.
    """
    reader = SlowReader(args)
    rss0 = stats.rss()
    window = Window(stats)
    reader.start = window.wall
    got, head, peak = reader.read_slowly(args.rate, args.duration, stats, rss0)
    rss_end = stats.rss()
    measured = window.close()
    # drain what is left, fast, to see how the stream ends (bounded by --drain-seconds)
    drained, tail = reader.drain(head, args.drain_seconds)
    reader.sock.close()
    closed_at, eof_at, state = reader.closed_at, reader.eof_at, reader.state
    ids = re.findall(rb"^id: (\S+)$", tail, re.MULTILINE)
    terminal = ended(tail[-2048:])
    cut_off = b":slow reader" in tail[-2048:]
    retry_hint = cut_off and tail.rfind(b"retry:") > tail.rfind(b"\nid: ")
    ending = (
        "slow-reader cut-off"
        if cut_off
        else (
            "terminal event"
            if terminal
            else ("closed without a terminal event" if eof_at is not None else "still open")
        )
    )
    return {
        "bytes_read": got,
        "bytes_drained": drained,
        "rss_peak_growth_mb": (peak - rss0) / 2**20 if rss0 else None,
        "rss_end_growth_mb": (rss_end - rss0) / 2**20 if rss0 and rss_end else None,
        "server_closed_s": closed_at,
        "server_state": state if closed_at is None else "closed",
        "cut_off": cut_off,
        "retry_hint": retry_hint,
        # the server ended the stream early: its cut-off message, or it closed (or aborted) its end of the
        # connection during the slow read without having sent the terminal event
        "disconnected": cut_off or (closed_at is not None and closed_at <= args.duration and not terminal),
        "ending": ending,
        "eof_s": eof_at,
        "last_id": ids[-1].decode() if ids else None,
        **measured,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["exec", "tokens", "idle", "fanout", "slow"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", default='{"inputs": {}, "mode": "stream"}')
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--n", default="100")
    parser.add_argument("--expect", type=int, help="tokens, fanout: the token events each stream must carry")
    parser.add_argument("--gate", help="fanout: the file whose creation lets the run go on")
    parser.add_argument("--rate", type=float, default=1024.0)
    parser.add_argument("--drain-seconds", type=float, default=15.0, help="slow: how long to drain the rest")
    args = parser.parse_args()
    if args.mode == "fanout":
        args.n = int(args.n)
    run = globals()[f"mode_{args.mode}"]
    stats = ServerStats(args.server_pid)
    result = run(args, stats) if args.mode == "slow" else asyncio.run(run(args, stats))
    print(json.dumps(result), flush=True)
