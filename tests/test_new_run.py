"""runs.new_run builds Runs positionally (fast); it must give what the keyword constructor gives."""

import pytest
from django.utils import timezone

from nexus_sse import runs
from nexus_sse.eventlog.base import EXECUTOR_ID
from nexus_sse.models import Run, Workflow
from tests import factories


@pytest.mark.django_db
def test_new_run_equals_a_run_built_with_keywords():
    workflow = Workflow.objects.create(slug="w", version="2.1.0", definition={"nodes": []})
    user = factories.user("ann")
    fast = runs.new_run(workflow, "async", {"x": 1}, user)
    slow = Run(workflow=workflow, workflow_version=workflow.version, status=Run.Status.RUNNING, mode="async",
               inputs={"x": 1}, user=user, executor=EXECUTOR_ID, started_at=fast.started_at,
               created_at=fast.created_at)
    for field in Run._meta.concrete_fields:
        if field.attname != "id":
            assert getattr(fast, field.attname) == getattr(slow, field.attname), field.attname
    assert fast.workflow is workflow and fast.user is user and fast.get_deferred_fields() == set()
    assert abs((timezone.now() - fast.created_at).total_seconds()) < 60
    fast.save(force_insert=True)
    assert Run.objects.get(pk=fast.pk).inputs == {"x": 1}


def test_new_run_refuses_to_build_runs_once_the_model_changed(monkeypatch):
    runs._check_run_fields.cache_clear()
    monkeypatch.setattr(runs, "_RUN_FIELDS", runs._RUN_FIELDS[:-1])
    with pytest.raises(RuntimeError, match="out of date"):
        runs.new_run(Workflow(slug="w", pk=1), "stream", {})
    runs._check_run_fields.cache_clear()
