"""The REST API: workflows (registry), runs (owner-only history, cancel), permissions, errors."""

import pytest
from rest_framework.test import APIClient

from nexus_sse.models import Run, Workflow
from tests import factories


@pytest.fixture
def api(workflows):
    return APIClient()


def slugs(response):
    return [w["slug"] for w in response.json()["results"]]


def test_anyone_lists_the_active_workflows_they_may_run(api):
    factories.set_policy("slow", is_active=False)
    factories.set_policy("fail", access="authenticated")
    listed = slugs(api.get("/api/workflows/"))
    assert "chat" in listed and "slow" not in listed and "fail" not in listed
    api.force_authenticate(factories.user("staff", staff=True))
    assert {"slow", "fail"} <= set(slugs(api.get("/api/workflows/")))


def test_workflow_detail_has_its_input_schema(api):
    body = api.get("/api/workflows/typed/").json()
    schema = body["effective_input_schema"]
    assert schema["required"] == ["count"] and schema["properties"]["count"]["type"] == "integer"
    assert body["source"] == "code"


def test_lists_are_paginated(api):
    body = api.get("/api/workflows/?page_size=2").json()
    assert body["count"] >= 9 and len(body["results"]) == 2 and body["next"]


DEFINITION = {"nodes": [{"id": "t", "type": "TemplateNode", "config": {"template": "Hi {name}"}}]}


def test_creating_admin_workflows_needs_the_add_permission(api):
    anonymous = api.post("/api/workflows/", {"slug": "hi", "definition": DEFINITION}, format="json")
    assert anonymous.status_code in (401, 403) and anonymous.json()["error_type"] in (
        "AuthenticationError",
        "PermissionDenied",
    )
    api.force_authenticate(factories.user("bob"))
    assert (
        api.post("/api/workflows/", {"slug": "hi", "definition": DEFINITION}, format="json").status_code
        == 403
    )
    api.force_authenticate(factories.user("eve", perms=("nexus_sse.add_workflow",)))
    created = api.post("/api/workflows/", {"slug": "hi", "definition": DEFINITION}, format="json")
    assert created.status_code == 201 and created.json()["source"] == "admin"
    assert Workflow.objects.get(slug="hi").source == "admin"


@pytest.mark.parametrize(
    ("definition", "path", "message"),
    [
        ({"nodes": [{"id": "x", "type": "Nope"}]}, "definition.nodes.x.type", "unknown node type"),
        (
            {
                "nodes": [
                    {"id": "a", "type": "TemplateNode", "config": {"template": "{x}"}},
                    {"id": "b", "type": "TemplateNode", "config": {"template": "{x}"}},
                ],
                "connections": [
                    {"from": "a", "output": "result", "to": "b", "input": "x"},
                    {"from": "b", "output": "result", "to": "a", "input": "x"},
                ],
            },
            "definition.connections",
            "cycle",
        ),
        (
            {
                "nodes": [{"id": "a", "type": "TemplateNode", "config": {"template": "{x}"}}],
                "connections": [{"from": "a", "output": "result", "to": "ghost", "input": "x"}],
            },
            "definition.connections.0",
            "unknown node",
        ),
    ],
)
def test_invalid_definitions_are_refused_with_the_failing_path(api, definition, path, message):
    api.force_authenticate(factories.user("eve", superuser=True))
    response = api.post("/api/workflows/", {"slug": "bad", "definition": definition}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error_type"] == "ValidationError" and body["path"] == path and message in body["error"]
    assert not Workflow.objects.filter(slug="bad").exists()


def test_code_workflows_only_change_their_policy_and_cannot_be_deleted(api):
    api.force_authenticate(factories.user("root", superuser=True))
    locked = api.patch("/api/workflows/chat/", {"definition": DEFINITION}, format="json")
    assert locked.status_code == 400 and locked.json()["path"] == "definition"
    policy = api.patch(
        "/api/workflows/chat/",
        {"is_active": False, "rate_limit": "5/min", "access": "authenticated"},
        format="json",
    )
    assert policy.status_code == 200
    chat = Workflow.objects.get(slug="chat")
    assert (chat.is_active, chat.rate_limit, chat.access) == (False, "5/min", "authenticated")
    assert api.delete("/api/workflows/chat/").status_code == 400
    factories.admin_workflow("gone")
    assert api.delete("/api/workflows/gone/").status_code == 204


def test_bad_policy_values_are_refused(api):
    api.force_authenticate(factories.user("root", superuser=True))
    assert (
        api.patch("/api/workflows/chat/", {"rate_limit": "lots"}, format="json").json()["path"]
        == "rate_limit"
    )
    response = api.patch("/api/workflows/chat/", {"access": "permission"}, format="json")
    assert response.status_code == 400 and response.json()["path"] == "permission"
    response = api.post(
        "/api/workflows/", {"slug": "s", "definition": DEFINITION, "input_schema": {"type": 5}}, format="json"
    )
    assert response.status_code == 400 and response.json()["path"] == "input_schema"


def make_run(owner=None, slug="greet", status="completed"):
    return Run.objects.create(
        workflow=Workflow.objects.get(slug=slug),
        status=status,
        user=owner,
        inputs={"name": "x"},
        result={"result": "Hello, x!"},
    )


def test_runs_are_visible_to_their_owner_and_staff_only(api):
    ann, bob = factories.user("ann"), factories.user("bob")
    mine, theirs = make_run(ann), make_run(bob, slug="chat", status="failed")
    assert api.get("/api/runs/").json()["count"] == 0  # anonymous: no history
    api.force_authenticate(ann)
    assert [r["run_id"] for r in api.get("/api/runs/").json()["results"]] == [str(mine.pk)]
    assert api.get(f"/api/runs/{theirs.pk}/").status_code == 404
    detail = api.get(f"/api/runs/{mine.pk}/").json()
    assert detail["result"] == {"result": "Hello, x!"} and detail["events"] == []
    api.force_authenticate(factories.user("staff", staff=True))
    assert api.get("/api/runs/").json()["count"] == 2
    assert [r["run_id"] for r in api.get("/api/runs/?workflow=chat&status=failed").json()["results"]] == [
        str(theirs.pk)
    ]
    assert api.get("/api/runs/?created_after=yesterday").status_code == 400


def test_cancelling_a_finished_run_reports_its_status(api):
    ann = factories.user("ann")
    run = make_run(ann)
    api.force_authenticate(factories.user("bob"))
    assert api.post(f"/api/runs/{run.pk}/cancel/").status_code == 404
    api.force_authenticate(ann)
    response = api.post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json() == {"run_id": str(run.pk), "status": "completed"}


def test_stream_tokens_are_issued_only_for_what_the_user_may_stream(api):
    factories.set_policy("fail", access="authenticated")
    assert api.post("/api/stream-tokens/", {"workflow": "fail"}, format="json").status_code == 403
    assert api.post("/api/stream-tokens/", {"workflow": "nope"}, format="json").status_code == 404
    assert api.post("/api/stream-tokens/", {}, format="json").json()["error_type"] == "ValidationError"
    api.force_authenticate(factories.user("ann"))
    body = api.post("/api/stream-tokens/", {"workflow": "fail"}, format="json").json()
    assert (
        body["url"] == f"/workflows/fail/execute?stream_token={body['token']}" and body["expires_in"] == 300
    )


def test_an_admin_workflows_input_schema_is_enforced_before_a_run_starts(workflows):
    from django.test import Client

    factories.admin_workflow(
        "strict",
        input_schema={
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "minLength": 2}},
        },
    )
    client = Client()
    short = client.post(
        "/workflows/strict/execute", {"inputs": {"name": "a"}}, content_type="application/json"
    )
    assert short.status_code == 400 and short.json()["path"] == "inputs.name"
    assert Run.objects.filter(workflow__slug="strict").count() == 0


def test_an_unexpected_error_in_the_api_is_our_json_500_without_its_details(workflows, monkeypatch):
    from django.test import Client

    from nexus_sse.api import views

    def broken(self):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(views.WorkflowViewSet, "get_queryset", broken)
    response = Client(raise_request_exception=False).get("/api/workflows/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["error_type"] == "InternalError"
    assert "secret internal detail" not in response.content.decode()


def test_the_api_takes_json_bodies_only(api):
    form = api.post("/api/stream-tokens/", {"workflow": "greet"})  # APIClient's default: multipart
    assert form.status_code == 415 and form.json()["error_type"] == "ValidationError"
    assert api.post("/api/stream-tokens/", {"workflow": "greet"}, format="json").status_code == 201
