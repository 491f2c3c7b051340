"""Benchmark reports name paths relative to the repository, not the machine they ran on."""

from benchmarks import report
from benchmarks.contenders import ROOT, Server, repo_relative


def test_paths_under_the_root_become_relative_to_it():
    command = "/srv/repo/benchmarks/.venvs/kailash/bin/python /srv/repo/benchmarks/kailash_app.py {port}"
    assert (
        repo_relative(command, "/srv/repo")
        == "benchmarks/.venvs/kailash/bin/python benchmarks/kailash_app.py {port}"
    )


def test_the_root_itself_and_paths_after_equals_or_colon_are_relativised():
    command = "PYTHONPATH=/srv/repo:/srv/repo/lib X=/srv/repo/ /srv/repo/.venv/bin/python -m uvicorn"
    assert repo_relative(command, "/srv/repo/") == "PYTHONPATH=.:lib X=. .venv/bin/python -m uvicorn"


def test_other_paths_and_lookalike_directories_stay_as_they_are():
    command = "/usr/bin/python /srv/repo-old/x.py /srv/repository/y.py --dir=/srv/repo2 a/srv/repo/z"
    assert repo_relative(command, "/srv/repo") == command


def test_the_default_root_is_this_checkout():
    assert repo_relative(f"{ROOT}/.venv/bin/python -m daphne") == ".venv/bin/python -m daphne"


def test_a_contenders_command_names_paths_relative_to_the_repository():
    argv = [f"{ROOT}/benchmarks/.venvs/kailash/bin/python", f"{ROOT}/benchmarks/kailash_app.py", "{port}"]
    server = Server("K", argv, {}, {"NEXUS_BENCH_FAST_PATH": "1", "PYTHONPATH": str(ROOT)})
    expected = "NEXUS_BENCH_FAST_PATH=1 benchmarks/.venvs/kailash/bin/python benchmarks/kailash_app.py {port}"
    assert server.command() == expected


def test_results_saved_with_the_paths_of_another_checkout_render_relative():
    meta = {
        "command": "python benchmarks/run.py",
        "servers": {
            "nexus_sse (uvicorn)": "NEXUS_BENCH_FAST_PATH=1 /elsewhere/main/.venv/bin/python -m uvicorn app",
            "Kailash Nexus": "/elsewhere/main/benchmarks/.venvs/kailash/bin/python "
            "/elsewhere/main/benchmarks/kailash_app.py {port} {mcp}",
        },
        "skipped": ["B: did not install (see /elsewhere/main/benchmarks/.venvs/starlette.log)"],
    }
    shown = report.portable(meta)
    assert shown["servers"] == {
        "nexus_sse (uvicorn)": "NEXUS_BENCH_FAST_PATH=1 .venv/bin/python -m uvicorn app",
        "Kailash Nexus": "benchmarks/.venvs/kailash/bin/python benchmarks/kailash_app.py {port} {mcp}",
    }
    assert shown["skipped"] == ["B: did not install (see benchmarks/.venvs/starlette.log)"]
    assert shown["command"] == meta["command"]
    assert "/elsewhere" in meta["servers"]["Kailash Nexus"]  # the caller's dict is left alone


def test_a_run_whose_commands_name_no_checkout_keeps_them():
    meta = {"servers": {"x": "/usr/bin/python3 -m uvicorn app"}}
    assert report.portable(meta)["servers"] == meta["servers"]
