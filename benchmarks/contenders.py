"""The contenders: each a server command run as its own process, and the paths of its endpoints."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
VENVS = BENCH / ".venvs"
PY = sys.executable
STREAM_BODY = '{"inputs": {}, "mode": "stream"}'
# Server on the first core, load on the second: one server process gets one core, as in production
# (one worker per core), and the load generator's own core shows whether it is the bottleneck.
SERVER_CPUS, LOAD_CPUS = (
    ("0", "1") if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else (None, None)
)


DJANGO_PATH = "nexus_sse (uvicorn, Django path)"
REDIS_LOG = "nexus_sse (uvicorn, Redis log)"
REDIS_URL = os.environ.get("NEXUS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_reachable() -> str | None:
    """None when Redis answers at REDIS_URL, else why not."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def fast_path_available() -> bool:
    """Whether this checkout's nexus_sse knows NEXUS_SSE["FAST_PATH"] (the lead's ASGI fast path)."""
    # (a word, not a quoted key: conf.py declares each setting as a field, FAST_PATH: bool = True)
    return re.search(r"\bFAST_PATH\b", (ROOT / "nexus_sse" / "conf.py").read_text()) is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def repo_relative(command: str, root: Path | str = ROOT) -> str:
    """``command`` with the paths under ``root`` written relative to it (reports name no machine)."""
    prefix = re.escape(str(root).rstrip("/"))
    # a path begins a word or follows "=" or ":" (PYTHONPATH=/a:/b): /repo/x -> x, /repo alone -> .
    pattern = rf"(?<![^\s=:]){prefix}(?:(/)(?=[^\s:])|/?(?=[\s:]|$))"
    return re.sub(pattern, lambda m: "" if m.group(1) else ".", command)


def pinned(cpus: str | None, argv: list[str]) -> list[str]:
    """``argv`` run on ``cpus`` only (with the threads it starts), by util-linux's taskset."""
    return ["taskset", "-c", cpus, *argv] if cpus else argv


class Server:
    """A contender: a command that serves on ``{port}``, its endpoints and request bodies."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        paths: dict[str, str],
        env: dict | None = None,
        bodies: dict | None = None,
        python: str = PY,
        skip: tuple[str, ...] = (),
    ) -> None:
        self.name, self.argv, self.paths, self.env = name, argv, paths, env or {}
        self.bodies = bodies or {}
        self.python = python
        self.nexus = name.startswith("nexus_sse")
        self.skip = set(skip)  # scenarios not run for this contender ("fanout", "slow", "idle", "wrk")

    def runs(self, scenario: str) -> bool:
        return scenario not in self.skip
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> Server:
        self.port = free_port()
        argv = [a.format(port=self.port, mcp=free_port()) for a in self.argv]
        self.proc = subprocess.Popen(
            pinned(SERVER_CPUS, argv),
            cwd=ROOT,
            env={**os.environ, **self.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start: {' '.join(argv)}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)  # polling the port with a deadline
        raise RuntimeError(f"{self.name} did not start")

    def command(self) -> str:
        """The command line, with the environment that differs between contenders."""
        env = " ".join(
            f"{k}={v}" for k, v in self.env.items() if k.startswith("NEXUS_BENCH_") and k != "NEXUS_BENCH_DB"
        )
        return repo_relative(f"{env} {' '.join(self.argv)}".strip())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stat(self) -> tuple[int, int]:
        """(RSS bytes, OS threads) of the server process."""
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        )
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["Threads"])

    def target(self, key: str, length: int | None = None) -> tuple[str, str]:
        """(path, body) of endpoint ``key``; ``length`` fills a stream length into either."""
        path, body = self.paths[key], self.bodies.get(key, STREAM_BODY)
        if length is not None:
            path, body = path.replace("%d", str(length)), body.replace("%d", str(length))
        return path, body

    def load_argv(self, mode: str, key: str, length: int | None = None, **kw) -> list[str]:
        path, body = self.target(key, length)
        return pinned(
            LOAD_CPUS,
            [
                PY,
                str(BENCH / "load.py"),
                mode,
                "--port",
                str(self.port),
                "--path",
                path,
                "--body",
                body,
                "--server-pid",
                str(self.proc.pid),
                *[f"--{k.replace('_', '-')}={v}" for k, v in kw.items()],
            ],
        )

    def load(self, mode: str, key: str, length: int | None = None, **kw) -> dict:
        began = time.monotonic()
        out = subprocess.run(
            self.load_argv(mode, key, length, **kw), check=False, capture_output=True, text=True, timeout=300
        )  # a load process never runs this long unless stuck
        if out.returncode:
            raise RuntimeError(f"{self.name} {mode} {key}: {out.stderr[-800:]}")
        return {**json.loads(out.stdout.splitlines()[-1]), "wall_s": round(time.monotonic() - began, 2)}


def ensure_venv(name: str, packages: list[str], python: str) -> str | None:
    """A separate virtual environment under benchmarks/.venvs/.

    None (with a message) if it will not install.
    """
    venv = VENVS / name
    marker = venv / ".installed"
    if not marker.exists():
        VENVS.mkdir(exist_ok=True)
        print(f"installing {' '.join(packages)} into {venv} ...", flush=True)
        log = VENVS / f"{name}.log"
        try:
            with log.open("w") as out:
                subprocess.run(
                    [python, "-m", "venv", "--clear", str(venv)], check=True, stdout=out, stderr=out
                )
                subprocess.run(
                    [str(venv / "bin" / "pip"), "install", "-q", *packages],
                    check=True,
                    timeout=600,
                    stdout=out,
                    stderr=out,
                )
        except (subprocess.SubprocessError, OSError) as exc:
            tail = log.read_text()[-600:] if log.exists() else ""
            print(f"skipping {name}: its environment did not install ({exc}); see {log}\n{tail}", flush=True)
            return None
        marker.touch()
    return str(venv / "bin" / "python")


def modern_python() -> str:
    """The oldest Python >= 3.12 for the peers' environments (tried with 3.12.1), else this one."""
    pyenv = shutil.which("pyenv")
    root = (
        subprocess.run([pyenv, "root"], check=False, capture_output=True, text=True).stdout.strip()
        if pyenv
        else ""
    )
    for candidate in sorted(Path(root or "/nonexistent").glob("versions/3.1[23].*/bin/python3.1[23]")):
        return str(candidate)
    return PY


def versions(python: str, packages: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\nout = {'python': sys.version.split()[0]}\n"
        f"for p in {packages!r}:\n    try: out[p] = m.version(p)\n    except Exception: pass\n"
        "print(json.dumps(out))"
    )
    out = subprocess.run([python, "-c", code], check=False, capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def build(db: str, skip_peers: bool = False) -> tuple[list[Server], dict]:
    """Every contender that can run here, and the versions of what each runs."""
    env = {"DJANGO_SETTINGS_MODULE": "benchmarks.settings", "NEXUS_BENCH_DB": db, "PYTHONPATH": str(ROOT)}
    tokens = '{"inputs": {"n": %d}, "mode": "stream"}'
    nexus_paths = {
        "one": "/workflows/bench_one/execute",
        "tokens": "/workflows/bench_tokens/execute",
        "idle": "/workflows/bench_idle/execute",
        "greet": "/workflows/greet/execute",
        "chat": "/workflows/chat/execute",
    }
    nexus_bodies = {
        "tokens": tokens,
        "greet": '{"inputs": {"name": "bench"}, "mode": "stream"}',
        "chat": '{"inputs": {"message": "Hello there"}, "mode": "stream"}',
    }
    uvicorn = [
        PY,
        "-m",
        "uvicorn",
        "project.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--lifespan",
        "off",
        "--no-access-log",
        "--log-level",
        "warning",
        "--backlog",
        "4096",
    ]
    daphne = [
        PY,
        "-m",
        "daphne",
        "-e",
        "tcp:port={port}:interface=127.0.0.1:backlog=4096",
        "project.asgi:application",
    ]
    baseline = {"one": "/baseline/one", "tokens": "/baseline/tokens?n=%d", "idle": "/baseline/idle"}
    fast, django_path = {**env, "NEXUS_BENCH_FAST_PATH": "1"}, {**env, "NEXUS_BENCH_FAST_PATH": "0"}
    servers = [
        Server("nexus_sse (uvicorn)", uvicorn, nexus_paths, fast, nexus_bodies),
        # the same server with NEXUS_SSE["FAST_PATH"] = False: every request through Django's handler
        Server(
            DJANGO_PATH,
            uvicorn,
            nexus_paths,
            django_path,
            nexus_bodies,
            skip=("fanout", "slow", "wrk", "idle"),
        ),
        Server("nexus_sse (daphne)", daphne, nexus_paths, fast, nexus_bodies),
        # the same server on the Redis event log (what several processes share): the cost of Redis
        Server(
            REDIS_LOG,
            uvicorn,
            nexus_paths,
            {**fast, "NEXUS_BENCH_REDIS_URL": REDIS_URL},
            nexus_bodies,
            skip=("wrk", "idle", "slow"),
        ),
        Server("A: bare Django view (uvicorn)", uvicorn, baseline, env),
        Server("A: bare Django view (daphne)", daphne, baseline, env, skip=("idle", "wrk")),
    ]
    found = {
        "main": versions(
            PY, ["django", "asgiref", "uvicorn", "uvloop", "httptools", "daphne", "twisted", "redis"]
        )
    }
    unreachable = redis_reachable()
    if unreachable:
        servers = [s for s in servers if s.name != REDIS_LOG]
        print(
            f"{REDIS_LOG} is skipped: Redis is not reachable at {REDIS_URL} ({unreachable}); start "
            "redis-server or set NEXUS_BENCH_REDIS_URL",
            flush=True,
        )
        found.setdefault("_skipped", []).append(f"{REDIS_LOG}: Redis not reachable at {REDIS_URL}")
    if skip_peers:
        return servers, found
    starlette = ensure_venv("starlette", ["sse-starlette", "uvicorn[standard]"], modern_python())
    if starlette:
        servers.append(
            Server(
                "B: sse-starlette (uvicorn)",
                [
                    starlette,
                    "-m",
                    "uvicorn",
                    "benchmarks.starlette_app:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "{port}",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--backlog",
                    "4096",
                ],
                {"one": "/one", "tokens": "/tokens?n=%d", "idle": "/idle"},
                {"PYTHONPATH": str(ROOT)},
                python=starlette,
                skip=("slow",),
            )
        )
        found["sse-starlette"] = versions(
            starlette, ["sse-starlette", "starlette", "uvicorn", "uvloop", "httptools"]
        )
    else:
        print("Baseline B (sse-starlette) is skipped: it did not install", flush=True)
        found.setdefault("_skipped", []).append(
            f"B: sse-starlette: did not install (see {VENVS / 'starlette.log'})"
        )
    kailash = ensure_venv("kailash", ["kailash-nexus"], modern_python())
    if kailash:
        servers.append(
            Server(
                "Kailash Nexus",
                [kailash, str(BENCH / "kailash_app.py"), "{port}", "{mcp}"],
                {"one": "/workflows/one/execute"},
                python=kailash,
            )
        )
        found["kailash"] = versions(
            kailash, ["kailash-nexus", "kailash", "fastapi", "uvicorn", "uvloop", "httptools"]
        )
    else:
        print("Kailash Nexus is skipped: kailash-nexus did not install", flush=True)
        found.setdefault("_skipped", []).append(
            f"Kailash Nexus: kailash-nexus did not install (see {VENVS / 'kailash.log'})"
        )
    return servers, found
