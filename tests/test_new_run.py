"""runs.new_run builds Runs positionally (fast); it must give what the keyword constructor gives."""

import asyncio
import os
import time
import uuid

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
    slow = Run(
        workflow=workflow,
        workflow_version=workflow.version,
        status=Run.Status.RUNNING,
        mode="async",
        inputs={"x": 1},
        user=user,
        executor=EXECUTOR_ID,
        started_at=fast.started_at,
        created_at=fast.created_at,
    )
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


# The child only writes 16 bytes to a pipe and exits: no lock of the parent's threads is touched.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_run_ids_are_time_ordered_uuid7s_and_a_forked_child_does_not_repeat_its_parents():
    before = time.time_ns() // 1_000_000
    ids = [runs.new_run_id() for _ in range(1000)]  # more than one refill of the random bytes
    after = time.time_ns() // 1_000_000
    assert (
        len(set(ids)) == 1000
        and {i.version for i in ids} == {7}
        and {i.variant for i in ids} == {uuid.RFC_4122}
    )
    stamps = [i.int >> 80 for i in ids]  # the first 48 bits: Unix time in ms
    assert before <= stamps[0] and stamps[-1] <= after
    assert len({i.int & ((1 << 62) - 1) for i in ids}) == 1000  # and the random part differs
    runs.new_run_id()  # the buffer holds bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, runs.new_run_id().bytes)
        os._exit(0)
    os.close(write)
    child = uuid.UUID(bytes=os.read(read, 16))
    os.waitpid(pid, 0)
    assert child != runs.new_run_id()


@pytest.mark.django_db(transaction=True)
async def test_requests_arriving_when_the_cached_workflow_expired_share_one_lookup(monkeypatch, workflows):
    from nexus_sse import db, registry

    calls = []
    real = db.call

    async def counting(func, *args, **kwargs):
        calls.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(db, "call", counting)
    registry.forget_workflow()
    rows = await asyncio.gather(*[registry.active_workflow("greet") for _ in range(20)])
    assert len(calls) == 1 and {row.slug for row in rows} == {"greet"}
    assert await registry.active_workflow("greet") is rows[0] and len(calls) == 1  # cached now
