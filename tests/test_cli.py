"""The CLI in subprocesses: exit codes, plain output, the live display under a pseudo-terminal,
Ctrl-C cancelling on the server, manage.py nexus_sse_run, and the README's examples."""

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nexus_sse.models import Run
from tests.live import ROOT, ServerProcess
from tests.sse_helpers import wait_for

CLI = [str(Path(sys.executable).parent / "nexus-sse"), "run"]


@pytest.fixture(scope="module")
def server(django_db_setup):
    overrides = {
        "ORPHAN_SECONDS": 30.0,
        "LLM_PROVIDERS": {"offline": {"BACKEND": "offline", "TOKEN_DELAY": 0.01}},
    }
    with ServerProcess("uvicorn", overrides=overrides) as proc:
        yield proc


@pytest.fixture
def url(server, workflows):
    return server.url


def cli(*args, **kwargs):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, **kwargs)


def test_plain_output_and_the_result(url):
    done = cli("greet", "--input", "name=Ann", "--url", url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.match(r"start run=[0-9a-f-]{36} workflow=greet", lines[0])
    assert "progress greet started 0%" in lines and "progress greet completed 100%" in lines
    assert lines[3].startswith("complete ")
    assert json.loads("\n".join(lines[4:])) == {"result": "Hello, Ann!"}


def test_inputs_from_json_files_typed_values_and_node_scoped_keys(url, tmp_path):
    (tmp_path / "in.json").write_text(json.dumps({"topic": "tides"}))
    done = cli(
        "research",
        "--json",
        str(tmp_path / "in.json"),
        "--input",
        "fetch.delay=0.01",
        "--input",
        "summarise.delay=0",
        "--url",
        url,
    )
    assert done.returncode == 0 and '"result": "Report on tides:' in done.stdout
    assert "progress fetch running" in done.stdout


@pytest.mark.parametrize(
    ("args", "code", "error_type"),
    [
        (["fail"], 7, "NodeError"),
        (["nope"], 5, "NotFound"),
        (["typed", "--input", "count=x"], 2, "ValidationError"),
        (["greet", "--input", "no-equals-sign"], 2, "ValidationError"),
    ],
)
def test_failures_exit_non_zero_with_the_error_type(url, args, code, error_type):
    done = cli(*args, "--url", url)
    assert done.returncode == code
    assert done.stderr.startswith(f"error: {error_type}: ")


def test_every_error_type_has_its_own_documented_exit_code():
    from nexus_sse.cli import EXIT_CODES
    from nexus_sse.exceptions import ERROR_TYPES

    assert set(ERROR_TYPES) <= set(EXIT_CODES)
    assert EXIT_CODES == {
        "ValidationError": 2,
        "AuthenticationError": 3,
        "PermissionDenied": 4,
        "NotFound": 5,
        "RateLimitError": 6,
        "NodeError": 7,
        "TimeoutError": 8,
        "CancelledError": 9,
        "InternalError": 10,
        "ConnectionLost": 11,
    }


def test_an_unreachable_server_is_a_connection_error(django_db_setup):
    done = cli("greet", "--input", "name=x", "--url", "http://127.0.0.1:1")
    assert done.returncode == 11 and done.stderr.startswith("error: ConnectionLost")


def test_the_live_display_on_a_terminal(url):
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*CLI, "chat", "--input", "message=Hi there", "--url", url],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    output = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(30) == 0
    text = output.decode()
    assert "▶ chat" in text and "● chat_agent started" in text and "chat_agent completed in" in text
    assert 'You said: "Hi there"' in text and re.search(r"done\x1b\[0m in \d+\.\d\ds", text)
    assert "\x1b[" in text and "\r" in text  # colours and the redrawn status line


def test_ctrl_c_cancels_the_run_on_the_server(url):
    process = subprocess.Popen(
        [*CLI, "slow", "--input", "seconds=30", "--url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = process.stdout.readline()
    run_id = re.match(r"start run=([0-9a-f-]{36})", first).group(1)
    process.send_signal(signal.SIGINT)
    assert process.wait(20) == 130
    assert wait_for(lambda: Run.objects.get(pk=run_id).status == "cancelled")


def test_manage_py_nexus_sse_run_locally_and_against_a_url(url):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "NEXUS_TEST_SERVER": "1"}
    local = subprocess.run(
        [sys.executable, "manage.py", "nexus_sse_run", "greet", "--input", "name=Loc"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert local.returncode == 0, local.stderr
    assert '"result": "Hello, Loc!"' in local.stdout and "start run=" in local.stdout
    remote = subprocess.run(
        [sys.executable, "manage.py", "nexus_sse_run", "fail", "--url", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert remote.returncode == 7 and "NodeError" in remote.stderr


def readme_block(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"```(?:python|sh)\n# example: " + marker + r"\n(.*?)```", text, re.S)
    assert match, f"README has no '# example: {marker}' block"
    return match.group(1)


def test_the_readme_client_example_runs(url):
    done = subprocess.run(
        [sys.executable, "-c", readme_block("client")],
        env={**os.environ, "NEXUS_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert 'You said: "Hello!"' in done.stdout and "{'result': 'Hello, Ann!'}" in done.stdout


def test_the_readme_cli_examples_run(url):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "NEXUS_TEST_SERVER": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for line in readme_block("cli").strip().splitlines():
        command = line.split("#")[0].strip().replace("http://127.0.0.1:8000", url)
        command = command.replace("python ", f"{sys.executable} ", 1)
        done = subprocess.run(
            command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (command, done.stderr)
        assert '"result"' in done.stdout
