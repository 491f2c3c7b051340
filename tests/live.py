"""Real ASGI servers for tests: uvicorn or daphne in a subprocess, serving the test settings.

Readiness is read from the server's own log line ("Uvicorn running on" / "Listening on TCP"), not
guessed with sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_MARKERS = {"uvicorn": "Uvicorn running on", "daphne": "Listening on TCP address"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """An ASGI server process on 127.0.0.1 (``kind`` is "uvicorn" or "daphne")."""

    def __init__(
        self,
        kind: str = "uvicorn",
        overrides: dict | None = None,
        env: dict | None = None,
        port: int | None = None,
        app: str = "project.asgi:application",
        args: tuple = (),
    ) -> None:
        self.kind = kind
        self.app = app
        self.args = tuple(args)  # extra server arguments, e.g. ("--root-path", "/mount") for uvicorn
        self.overrides = overrides or {}
        self.extra_env = env or {}
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "uvicorn":
            return [
                sys.executable,
                "-m",
                "uvicorn",
                self.app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "off",
                "--no-access-log",
                *self.args,
            ]
        if self.kind == "daphne":
            return [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                *self.args,
                self.app,
            ]
        raise ValueError(self.kind)

    def start(self, timeout: float = 30) -> ServerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "NEXUS_TEST_SERVER": "1",
            "NEXUS_TEST_OVERRIDES": json.dumps(self.overrides),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        self.proc = subprocess.Popen(
            self.command(), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        ready = threading.Event()

        def pump() -> None:
            assert self.proc and self.proc.stdout
            for line in self.proc.stdout:
                self.output.append(line)
                if READY_MARKERS[self.kind] in line:
                    ready.set()
            ready.set()  # the process ended: stop waiting

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"{self.kind} did not start:\n{''.join(self.output)}")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """Die like a crashed process: no shutdown, no cleanup."""
        self.stop(signal.SIGKILL)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
