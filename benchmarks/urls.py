"""The demo site's URLs plus baseline A's views, in one Django site and one server process."""

from django.urls import path

from benchmarks import baseline
from project.urls import urlpatterns as site

urlpatterns = [
    path("baseline/one", baseline.one),
    path("baseline/tokens", baseline.tokens),
    path("baseline/idle", baseline.idle),
    *site,
]
