"""``nexus-sse run <workflow> --input k=v ...``: run a workflow on a server, show it live, print the result.

Exit status: 0 on success, otherwise by error type (2 ValidationError, 3 AuthenticationError,
4 PermissionDenied, 5 NotFound, 6 RateLimitError, 7 NodeError, 8 TimeoutError, 9 CancelledError,
10 InternalError, 11 connection lost, 130 interrupted by Ctrl-C (the run is cancelled on the server).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from typing import Any

from nexus_sse.exceptions import ERROR_TYPES, NexusError

EXIT_CODES = {
    **{error_type: cls.exit_code for error_type, cls in ERROR_TYPES.items()},
    "ConnectionLost": 11,  # the client's own: the stream ended and could not be resumed
}


def add_run_arguments(parser: argparse.ArgumentParser, url_required: bool) -> None:
    parser.add_argument("workflow", help="the workflow's name")
    parser.add_argument(
        "--input",
        "-i",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an input (VALUE is JSON if it parses, else a string; node.key feeds one node)",
    )
    parser.add_argument("--json", metavar="FILE", help="inputs as a JSON object from FILE ('-': stdin)")
    parser.add_argument(
        "--url",
        required=url_required,
        default=None,
        help="the server where nexus_sse is mounted, e.g. http://127.0.0.1:8000",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("NEXUS_SSE_TOKEN"),
        help="API token (Authorization: Token); default $NEXUS_SSE_TOKEN",
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        default=None,
        help="plain lines even on a terminal (the default when output is not one)",
    )


def parse_inputs(pairs: Iterable[str], json_file: str | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if json_file:
        with sys.stdin if json_file == "-" else open(json_file) as handle:
            loaded = json.load(handle)
        if not isinstance(loaded, dict):
            raise ValueError("--json must contain a JSON object")
        inputs.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--input needs KEY=VALUE, got {pair!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        node, dot, name = key.partition(".")
        if dot:
            inputs.setdefault(node, {})[name] = value
        else:
            inputs[key] = value
    return inputs


def show(events: Iterable[Any], display: Any) -> tuple[Any, NexusError | None]:
    """Feed events to the display; return (result, error)."""
    last = None
    for last in events:
        display.event(last)
    if last is None or not last.terminal:
        from nexus_sse.client.errors import ConnectionLost

        return None, ConnectionLost("the stream ended before the run did")
    if last.event == "error":
        from nexus_sse.client.errors import error_from

        return None, error_from(last.data)
    return last.data.get("result"), None


def finish(result: Any, error: NexusError | None, display: Any) -> int:
    if error is not None:
        print(f"error: {error.error_type}: {error.message}", file=sys.stderr, flush=True)
        return EXIT_CODES.get(error.error_type, 1)
    display.result(result)
    return 0


def run_remote(args: argparse.Namespace, out: Any = None) -> int:
    """Run ``args.workflow`` on the server at ``args.url``."""
    from nexus_sse.client import NexusClient
    from nexus_sse.client.common import Cursor
    from nexus_sse.client.display import display_for

    out = out or sys.stdout
    display = display_for(out, args.plain)
    try:
        inputs = parse_inputs(args.input, args.json)
    except (ValueError, OSError) as exc:
        print(f"error: ValidationError: {exc}", file=sys.stderr)
        return 2
    cursor = Cursor()
    with NexusClient(args.url, token=args.token) as client:
        try:
            result, error = show(client.stream(args.workflow, inputs, cursor=cursor), display)
        except NexusError as exc:
            result, error = None, exc
        except KeyboardInterrupt:
            if cursor.run_id:
                try:
                    client.cancel(cursor.run_id)
                    print(f"\ncancelled run {cursor.run_id}", file=sys.stderr)
                except Exception as exc:  # still exit: the user asked to stop
                    print(f"\ncould not cancel run {cursor.run_id}: {exc}", file=sys.stderr)
            return 130
    return finish(result, error, display)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nexus-sse", description="Run nexus_sse workflows from a terminal.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a workflow and show its events")
    add_run_arguments(run, url_required=False)
    args = parser.parse_args(argv)
    args.url = args.url or os.environ.get("NEXUS_SSE_URL", "http://127.0.0.1:8000")
    return run_remote(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
