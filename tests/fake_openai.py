"""A local stand-in for an OpenAI-compatible server: real HTTP, the real streaming chat protocol.

POST /v1/chat/completions with "stream": true answers `data: {chunk}` lines, a usage chunk and
`data: [DONE]`. The model name picks the behaviour:

- "fake": replies "Echo: <last user message>" word by word
- "fake-slow": 60 words, 0.1 s apart (for cancel and for watching tokens arrive)
- "fake-429-once": 429 with Retry-After: 0 on the first request, then like "fake"
- "fake-500", "fake-401": that status, with an OpenAI-style error body
- "fake-error-chunk": one word, then an error chunk
- "fake-hang": headers, then silence
- "fake-nostream": ignores "stream" and answers one JSON chat completion (as some servers do)
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

logger = logging.getLogger(__name__)

#: how often serve_forever looks for shutdown(): the teardown of every test waits up to this long
POLL_SECONDS = 0.01


class QuietServer(ThreadingHTTPServer):
    """Drop clients that hang up without a traceback (the provider tests cancel streams on purpose)."""

    daemon_threads = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: set when a client hung up on a connection it had open (say, while kept alive)
        self.hung_up = threading.Event()

    def handle_error(self, request, client_address) -> None:
        # socketserver's default prints the traceback to stderr, into pytest's progress line
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionResetError, BrokenPipeError)):
            self.hung_up.set()
            return
        logger.exception("fake OpenAI server: error serving %s", client_address)


class FakeOpenAI:
    """Run the fake server in a thread; ``requests`` records what it received."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.disconnects = threading.Event()
        self.seen_429: set[str] = set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                owner.respond(self, body)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(POLL_SECONDS,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()  # returns once serve_forever has (within POLL_SECONDS)
        self.thread.join()
        self.server.server_close()

    def respond(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        model = body.get("model", "fake")
        if handler.path.split("?")[0] != "/v1/chat/completions":
            return self.error(handler, 404, "not found")
        if model == "fake-401":
            return self.error(handler, 401, "Incorrect API key provided: sk-secret")
        if model == "fake-500":
            return self.error(handler, 500, "internal stack trace here")
        if model == "fake-429-once" and model not in self.seen_429:
            self.seen_429.add(model)
            return self.error(handler, 429, "Rate limit reached", {"Retry-After": "0"})
        last = next((m["content"] for m in reversed(body.get("messages", [])) if m["role"] == "user"), "")
        if model == "fake-nostream":
            return self.json(
                handler,
                200,
                {
                    "id": "c1",
                    "object": "chat.completion",
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": f"Echo: {last}"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                },
            )
        words = [f"w{i} " for i in range(60)] if model == "fake-slow" else f"Echo: {last}".split(" ")
        delay = 0.1 if model == "fake-slow" else 0.0
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        try:
            if model == "fake-hang":
                time.sleep(5)
                return
            for i, word in enumerate(words):
                text = word if model == "fake-slow" or i == len(words) - 1 else word + " "
                self.chunk(
                    handler,
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "model": model,
                        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
                    },
                )
                if model == "fake-error-chunk":
                    self.chunk(
                        handler, {"error": {"message": "the model overheated", "type": "server_error"}}
                    )
                    break
                if delay:
                    time.sleep(delay)
            if body.get("stream_options", {}).get("include_usage"):
                self.chunk(
                    handler,
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "choices": [],
                        "usage": {
                            "prompt_tokens": 5,
                            "completion_tokens": len(words),
                            "total_tokens": 5 + len(words),
                        },
                    },
                )
            self.raw(handler, b"data: [DONE]\n\n")
            self.raw(handler, b"")  # the last chunk: the reply is complete
        except (BrokenPipeError, ConnectionResetError):
            self.disconnects.set()

    def chunk(self, handler, payload: dict) -> None:
        self.raw(handler, f"data: {json.dumps(payload)}\n\n".encode())

    @staticmethod
    def raw(handler, data: bytes) -> None:
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        handler.wfile.flush()

    @classmethod
    def error(cls, handler, status: int, message: str, headers: dict | None = None) -> None:
        cls.json(handler, status, {"error": {"message": message, "type": "invalid_request_error"}}, headers)

    @staticmethod
    def json(handler, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
