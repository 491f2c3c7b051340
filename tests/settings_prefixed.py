"""The test settings with nexus_sse mounted under prefixes (tests/urls_prefixed.py), for server processes."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls_prefixed"
