"""Run a workflow from the terminal: in this process, or on a server with --url."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandParser

from nexus_sse.cli import EXIT_CODES, add_run_arguments, finish, parse_inputs, run_remote

if TYPE_CHECKING:
    from nexus_sse.client.display import PlainDisplay
    from nexus_sse.exceptions import NexusError


class Command(BaseCommand):
    help = (
        "Run a workflow and show its progress, tokens and result live (plain lines when not on a "
        "terminal). Without --url it runs in this process. Exits non-zero with the error type on failure."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        add_run_arguments(parser, url_required=False)

    def handle(self, *args: Any, **options: Any) -> None:
        ns = argparse.Namespace(
            **{k: options[k] for k in ("workflow", "input", "json", "url", "token", "plain")}
        )
        code = run_remote(ns, self.out) if ns.url else self.run_local(ns)
        if code:
            sys.exit(code)

    @property
    def out(self) -> TextIO:
        """The stream under ``self.stdout``: the displays write their own line ends."""
        return cast(TextIO, self.stdout._out)

    def run_local(self, ns: argparse.Namespace) -> int:
        from nexus_sse.client.display import display_for

        display = display_for(self.out, ns.plain)
        try:
            inputs = parse_inputs(ns.input, ns.json)
        except (ValueError, OSError) as exc:
            self.stderr.write(f"error: ValidationError: {exc}")
            return EXIT_CODES["ValidationError"]
        try:
            result, error = asyncio.run(_local(ns.workflow, inputs, display))
        except KeyboardInterrupt:
            return 130
        return finish(result, error, display)


async def _local(
    workflow: str, inputs: dict[str, Any], display: PlainDisplay
) -> tuple[Any, NexusError | None]:
    from nexus_sse import registry, runs
    from nexus_sse.client.errors import error_from
    from nexus_sse.client.events import make_event
    from nexus_sse.eventlog import get_event_log
    from nexus_sse.exceptions import NexusError, NotFound
    from nexus_sse.workflows.schema import validate_inputs

    try:
        row = await registry.active_workflow(workflow)
        if row is None:
            raise NotFound(f"no active workflow named {workflow!r}")
        graph = registry.graph_for(row)
        validate_inputs(graph.input_schema, inputs)
        run = await runs.start(row, graph, inputs, mode="async")
    except NexusError as exc:
        return None, exc
    log, cursor, last = get_event_log(), 0, None
    try:
        while last is None or not last.terminal:
            for item in await log.wait_after(str(run.pk), cursor, None):
                cursor, last = item.seq, make_event(item.event, item.data_json, item.id)
                display.event(last)
    except asyncio.CancelledError:
        await runs.cancel(run)
        raise
    if last.event == "error":
        return None, error_from(last.data)
    return last.data.get("result"), None
