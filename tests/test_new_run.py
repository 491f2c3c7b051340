"""Run.new builds Runs positionally (fast); it must give what the keyword constructor gives."""

import asyncio
import os
import time
import uuid

import pytest
from django.utils import timezone

from nexus_sse.eventlog.base import EXECUTOR_ID
from nexus_sse.models import Run, Workflow
from nexus_sse.run_ids import new_run_id
from tests import factories


@pytest.mark.django_db
def test_new_run_equals_a_run_built_with_keywords():
    workflow = Workflow.objects.create(slug="w", version="2.1.0", definition={"nodes": []})
    user = factories.user("ann")
    fast = Run.new(workflow, "async", {"x": 1}, user)
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


#: Run's columns in the order Run.new passes its positional values
RUN_FIELDS = (
    "id",
    "workflow_id",
    "workflow_version",
    "status",
    "mode",
    "inputs",
    "result",
    "outputs",
    "error",
    "error_type",
    "user_id",
    "executor",
    "created_at",
    "started_at",
    "finished_at",
    "execution_time",
)


def test_run_new_is_out_of_date_once_runs_columns_change():
    """When this fails, Run's fields changed: update Run.new's positional values, then this list."""
    assert tuple(f.attname for f in Run._meta.concrete_fields) == RUN_FIELDS


# The child only writes 16 bytes to a pipe and exits: no lock of the parent's threads is touched.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_run_ids_are_time_ordered_uuid7s_and_a_forked_child_does_not_repeat_its_parents():
    before = time.time_ns() // 1_000_000
    ids = [new_run_id() for _ in range(1000)]  # more than one refill of the random bytes
    after = time.time_ns() // 1_000_000
    assert (
        len(set(ids)) == 1000
        and {i.version for i in ids} == {7}
        and {i.variant for i in ids} == {uuid.RFC_4122}
    )
    stamps = [i.int >> 80 for i in ids]  # the first 48 bits: Unix time in ms
    assert before <= stamps[0] and stamps[-1] <= after
    assert len({i.int & ((1 << 62) - 1) for i in ids}) == 1000  # and the random part differs
    new_run_id()  # the buffer holds bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, new_run_id().bytes)
        os._exit(0)
    os.close(write)
    child = uuid.UUID(bytes=os.read(read, 16))
    os.waitpid(pid, 0)
    assert child != new_run_id()


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
