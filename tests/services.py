"""External things some tests need (Redis, nginx, Chromium, PostgreSQL): under CI=true a missing one
fails the test; elsewhere the test skips, saying how to enable it."""

import os

import pytest


def missing(message: str):
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
