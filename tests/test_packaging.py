"""The distributions: the sdist carries a test suite that runs after unpacking, the wheel only the app.

Both are built with the ``build`` frontend without isolation (``build`` and ``setuptools`` are in the
``dev`` extra): the sdist from a copy of the checkout (so nothing is written into it), the wheel from
the unpacked sdist as ``python -m build`` does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import nexus_sse

ROOT = Path(__file__).resolve().parent.parent
NAME = f"nexus_sse-{nexus_sse.__version__}"

#: what the unpacked sdist's tests need beside the package
SDIST_FILES = (
    "LICENSE",
    "README.md",
    "pyproject.toml",
    "manage.py",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/settings.py",
    "tests/settings_prefixed.py",
    "tests/urls_prefixed.py",
    "tests/workflows.py",
    "tests/inprocess.py",
    "project/settings.py",
    "project/urls.py",
    "templates/home.html",
    "static/.keep",
    "docs/settings.md",
    "deploy/nginx-nexus.conf",
    "nexus_sse/py.typed",
)

#: a small in-process part of the suite, run from the unpacked sdist
SDIST_TESTS = ("tests/test_sse.py", "tests/test_settings_table.py")


def build(kind: str, source: Path, outdir: Path) -> Path:
    """Build one distribution of ``source`` into ``outdir``; its path."""
    cmd = [sys.executable, "-m", "build", f"--{kind}", "--no-isolation", "--outdir", str(outdir)]
    done = subprocess.run([*cmd, str(source)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = outdir.iterdir()
    return built


def clean_env(tree: Path) -> dict[str, str]:
    """This environment, importing from ``tree`` first and on its own SQLite test database."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("NEXUS_TEST") and key not in ("NEXUS_DB", "DJANGO_SETTINGS_MODULE")
    }
    env["PYTHONPATH"] = str(tree)
    return env


#: what a checkout holds besides its sources; an old *.egg-info would even add its SOURCES.txt to the sdist
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv*", "*.egg-info", "__pycache__", "build", "dist", "*.sqlite3*", "staticfiles", ".*cache"
)


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    """The sdist of a copy of this checkout's sources, built into a temporary directory."""
    source = tmp_path_factory.mktemp("checkout") / "nexus_sse"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    return build("sdist", source, tmp_path_factory.mktemp("sdist"))


@pytest.fixture(scope="module")
def unpacked(sdist, tmp_path_factory) -> Path:
    """The sdist unpacked: its top directory."""
    into = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    return into / NAME


def test_sdist_holds_the_license_and_what_its_tests_need(sdist):
    with tarfile.open(sdist) as archive:
        names = {name.removeprefix(f"{NAME}/") for name in archive.getnames()}
    missing = [name for name in SDIST_FILES if name not in names]
    assert not missing, f"not in the sdist: {missing}"
    stray = [n for n in names if n.endswith((".pyc", ".sqlite3")) or "__pycache__" in n]
    assert not stray, f"build leftovers in the sdist: {stray}"


def test_sdist_tests_pass_from_the_unpacked_tree(unpacked):
    env = clean_env(unpacked)
    where = "import nexus_sse, project, tests; print(nexus_sse.__file__, project.__file__, tests.__file__)"
    done = subprocess.run(
        [sys.executable, "-c", where], cwd=unpacked, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    for path in done.stdout.split():
        assert Path(path).resolve().is_relative_to(unpacked.resolve()), f"{path} is not from the sdist"

    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SDIST_TESTS]
    done = subprocess.run(cmd, cwd=unpacked, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ passed", summary) and not re.search("failed|error", summary), summary


def test_wheel_built_from_the_sdist_holds_only_the_package(unpacked, tmp_path):
    wheel = build("wheel", unpacked, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"{NAME}.dist-info/METADATA").decode()
    other = [n for n in names if not n.startswith(("nexus_sse/", f"{NAME}.dist-info/"))]
    assert not other, f"the wheel holds more than the package: {other}"
    assert "nexus_sse/py.typed" in names
    assert any(n.startswith("nexus_sse/templates/nexus_sse/") for n in names)
    assert any(n.startswith("nexus_sse/static/nexus_sse/") for n in names)
    assert f"{NAME}.dist-info/licenses/LICENSE" in names
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "Classifier: Framework :: Django :: 5.2" in metadata.splitlines()
