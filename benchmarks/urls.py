"""The demo site's URLs plus baseline A's views, in one Django site and one server process."""

import os

from django.urls import path

from benchmarks import baseline
from project.urls import urlpatterns as site

urlpatterns = [
    path("baseline/one", baseline.one),
    path("baseline/tokens", baseline.tokens),
    path("baseline/idle", baseline.idle),
    *site,
]
if os.environ.get("NEXUS_BENCH_TRACEMALLOC"):  # benchmarks/profile.py memory
    from benchmarks.tracing import tracemalloc_view

    urlpatterns.insert(0, path("bench/tracemalloc", tracemalloc_view))
