"""SSE load generator: raw asyncio HTTP/1.1, one process, no HTTP library in the way.

Modes (one JSON line on stdout with the figures):
  exec    executions/s and time to first event: each worker POSTs, reads the stream to its end, again
  tokens  events/s of one long stream
  idle    open N streams, read their first event, report "ready", hold them until stdin closes
  fanout  N subscribers read the same run's events (GET), report events/s delivered and the spread
  slow    read one stream at --rate bytes/s for --duration seconds
"""

import argparse
import asyncio
import json
import statistics
import sys
import time


def request(args, method="POST", path=None, headers="") -> bytes:
    path = path or args.path
    body = args.body.encode() if method == "POST" else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\nAccept: text/event-stream\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n")
    return head.encode() + body


async def open_stream(args, data: bytes):
    reader, writer = await asyncio.open_connection(args.host, args.port)
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    return reader, writer


async def read_to_end(reader, on_chunk=None) -> None:
    tail = b""
    while not (tail.endswith(b"0\r\n\r\n")):
        chunk = await reader.read(65536)
        if not chunk:
            return
        if on_chunk:
            on_chunk(chunk)
        tail = (tail + chunk)[-16:]


async def mode_exec(args):
    data = request(args)
    ttfe, total, errors = [], [], []

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
                if not head.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
                first = []
                await read_to_end(reader, lambda c: first or (b"event: start" in c and first.append(time.perf_counter())))
                if b"connection: close" in head.lower():
                    writer.close()
                    conn = None
                if record:
                    ttfe.append(first[0] - began if first else None)
                    total.append(time.perf_counter() - began)
            except Exception as exc:  # count and reconnect
                errors.append(type(exc).__name__)
                conn = None

    await asyncio.gather(*[worker(time.perf_counter() + 0.5, False) for _ in range(args.concurrency)])
    began = time.perf_counter()
    await asyncio.gather(*[worker(began + args.duration, True) for _ in range(args.concurrency)])
    elapsed = time.perf_counter() - began
    firsts = sorted(t for t in ttfe if t is not None)
    return {"executions_per_s": len(total) / elapsed,
            "ttfe_p50_ms": 1000 * statistics.median(firsts) if firsts else None,
            "ttfe_p99_ms": 1000 * firsts[int(0.99 * (len(firsts) - 1))] if firsts else None,
            "completed": len(total), "errors": len(errors)}


async def mode_tokens(args):
    reader, writer = await open_stream(args, request(args))
    count = [0]
    began = time.perf_counter()
    await read_to_end(reader, lambda c: count.__setitem__(0, count[0] + c.count(b"event: token")))
    elapsed = time.perf_counter() - began
    writer.close()
    return {"events_per_s": count[0] / elapsed, "events": count[0], "seconds": elapsed}


async def mode_idle(args):
    data = request(args)
    streams = []
    for start in range(0, args.n, 200):  # in waves, so the listen backlog copes
        opened = await asyncio.gather(*[open_stream(args, data) for _ in range(min(200, args.n - start))])
        for reader, _ in opened:
            await reader.readuntil(b"event: start")
        streams += opened
    print(json.dumps({"ready": len(streams)}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, writer in streams:
        writer.close()
    return {"closed": len(streams)}


async def mode_fanout(args):
    data = request(args, "GET", args.path)
    ends, counts = [], []

    async def subscriber():
        reader, writer = await open_stream(args, data)
        n = [0]
        await read_to_end(reader, lambda c: n.__setitem__(0, n[0] + c.count(b"\n\n")))
        ends.append(time.perf_counter())
        counts.append(n[0])
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*[subscriber() for _ in range(args.n)])
    return {"events_per_s": sum(counts) / (max(ends) - began), "lag_s": max(ends) - min(ends),
            "subscribers": len(ends), "events_each": statistics.median(counts)}


async def mode_slow(args):
    reader, writer = await open_stream(args, request(args))
    began = time.perf_counter()
    got = 0
    while time.perf_counter() - began < args.duration:
        chunk = await reader.read(max(1, int(args.rate / 10)))
        if not chunk:
            break
        got += len(chunk)
        await asyncio.sleep(0.1)
    writer.close()
    return {"bytes_read": got, "seconds": time.perf_counter() - began}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["exec", "tokens", "idle", "fanout", "slow"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", default='{"inputs": {}, "mode": "stream"}')
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--rate", type=float, default=1024.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(globals()[f"mode_{args.mode}"](args))), flush=True)
