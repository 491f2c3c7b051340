"""Show a run's events on a terminal (live) or as plain lines (pipes, logs, CI)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from nexus_sse.client.events import Event


class PlainDisplay:
    """One line per event, machine-friendly: ``progress <node> <status> <percent>%``, ``token "<json>"``..."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def event(self, event: Event) -> None:
        d = event.data
        if event.event == "start":
            line = f"start run={d.get('run_id')} workflow={d.get('workflow_id')}"
        elif event.event == "progress":
            line = f"progress {d.get('node')} {d.get('status')} {d.get('percent')}%"
        elif event.event == "token":
            line = f"token {json.dumps(d.get('delta', ''), ensure_ascii=False)}"
        elif event.event == "complete":
            line = f"complete {d.get('execution_time')}s"
        elif event.event == "error":
            line = f"error {d.get('error_type')}: {d.get('error')}"
        else:
            line = f"{event.event} {json.dumps(d, ensure_ascii=False)}"
        print(line, file=self.out, flush=True)

    def result(self, result: Any) -> None:
        print(json.dumps(result, ensure_ascii=False, indent=2), file=self.out, flush=True)


class LiveDisplay(PlainDisplay):
    """For a terminal: node status lines, tokens as they stream, a status line with the elapsed time."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        super().__init__(out)
        self.started = time.monotonic()
        self.node_started: dict[str, float] = {}
        self.in_text = False
        self.status = ""

    def _clear_status(self) -> None:
        if self.status:
            self.out.write("\r\x1b[K")
            self.status = ""

    def _show_status(self, text: str) -> None:
        if self.in_text:
            return  # do not break streamed text
        self.status = f"\x1b[2m[{time.monotonic() - self.started:5.1f}s] {text}\x1b[0m"
        self.out.write("\r\x1b[K" + self.status)
        self.out.flush()

    def _line(self, text: str) -> None:
        self._clear_status()
        if self.in_text:
            self.out.write("\n")
            self.in_text = False
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, event: Event) -> None:
        d = event.data
        if event.event == "start":
            self._line(f"\x1b[1m▶ {d.get('workflow_id')}\x1b[0m  run {d.get('run_id')}")
        elif event.event == "progress":
            node, status = str(d.get("node")), d.get("status")
            if status == "started":
                self.node_started[node] = time.monotonic()
                self._line(f"  ● {node} started")
            elif status == "completed":
                took = time.monotonic() - self.node_started.get(node, self.started)
                self._line(f"  \x1b[32m✓\x1b[0m {node} completed in {took:.2f}s")
            self._show_status(
                f"{d.get('percent')}% {node} {status}" + (f" — {d['message']}" if d.get("message") else "")
            )
        elif event.event == "token":
            self._clear_status()
            self.out.write(d.get("delta", ""))
            self.out.flush()
            self.in_text = True
        elif event.event == "complete":
            self._line(f"\x1b[32m✔ done\x1b[0m in {time.monotonic() - self.started:.2f}s")
        elif event.event == "error":
            self._line(f"\x1b[31m✘ {d.get('error_type')}\x1b[0m: {d.get('error')}")


def display_for(out: TextIO, plain: bool | None = None) -> PlainDisplay:
    if plain is None:
        plain = not out.isatty()
    return PlainDisplay(out) if plain else LiveDisplay(out)
