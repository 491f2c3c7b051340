"""Playwright driving Debian's Chromium (Playwright's own browser download is not available here)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.services import missing

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        missing(
            "Chromium is missing: install Debian's chromium (apt-get install chromium; `make test` does it)"
        )
    return path


@pytest.fixture
def page(monkeypatch):
    """A fresh page in a fresh headless Chromium (the test's ORM calls stay allowed beside its loop)."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=ARGS)
        context = browser.new_context(viewport={"width": 800, "height": 700})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.js_errors = errors
        yield page
        context.close()
        browser.close()
