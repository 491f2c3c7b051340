"""A small SSE load generator: raw asyncio HTTP/1.1 (keep-alive), one process, no HTTP library.

Each request POSTs an execute with Accept: text/event-stream and reads the chunked body until its
end; it records the time to the first `event: start` and to the end. Prints one JSON line.
"""

import argparse
import asyncio
import json
import statistics
import time


async def worker(host, port, request, stop, ttfe, total, errors):
    reader = writer = None
    while time.perf_counter() < stop:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            began = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n", 1)[0].decode())
                writer.close()
                writer = None
                continue
            first = None
            buffered = b""
            while not buffered.endswith(b"0\r\n\r\n"):
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionError("closed mid-stream")
                buffered = buffered[-16:] + chunk
                if first is None and b"event: start" in chunk:
                    first = time.perf_counter() - began
            ttfe.append(first)
            total.append(time.perf_counter() - began)
        except (OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
            errors.append(type(exc).__name__)
            writer = None


async def main(args):
    body = json.dumps({"inputs": json.loads(args.inputs)}).encode()
    request = (
        f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\nAccept: text/event-stream\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    ttfe, total, errors = [], [], []
    warm = time.perf_counter() + 0.5
    await asyncio.gather(*[worker(args.host, args.port, request, warm, [], [], []) for _ in range(args.concurrency)])
    began = time.perf_counter()
    await asyncio.gather(*[worker(args.host, args.port, request, began + args.duration, ttfe, total, errors)
                           for _ in range(args.concurrency)])
    elapsed = time.perf_counter() - began
    ttfe.sort()
    print(json.dumps({
        "executions_per_s": len(total) / elapsed,
        "ttfe_p50_ms": 1000 * statistics.median(ttfe) if ttfe else None,
        "ttfe_p99_ms": 1000 * ttfe[int(0.99 * (len(ttfe) - 1))] if ttfe else None,
        "completed": len(total),
        "errors": len(errors),
    }))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--inputs", default="{}")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
