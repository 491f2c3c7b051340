"""The admin: workflow registry pages, validation shown on the form, runs, cancel, permissions."""

import json

import pytest
from django.test import Client

from nexus_sse.models import Run, RunEvent, Workflow
from tests import factories


@pytest.fixture
def staff(workflows):
    client = Client()
    client.force_login(factories.user("root", superuser=True))
    return client


@pytest.fixture
def nobody(workflows):
    client = Client()
    client.force_login(factories.user("intern", staff=True))  # staff, but no model permissions
    return client


def definition_post(slug, definition, **extra):
    return {
        "slug": slug,
        "name": slug,
        "version": "1.0.0",
        "description": "",
        "access": "",
        "permission": "",
        "rate_limit": "",
        "input_schema": "null",
        "is_active": "on",
        "definition": json.dumps(definition),
        **extra,
    }


def test_workflow_list_shows_runs_and_last_status(staff):
    chat = Workflow.objects.get(slug="chat")
    Run.objects.create(workflow=chat, status="completed")
    Run.objects.create(workflow=chat, status="failed")
    page = staff.get("/admin/nexus_sse/workflow/").content.decode()
    assert "chat" in page and "research" in page and "Try it" in page
    row = page[page.index(f"/admin/nexus_sse/workflow/{chat.pk}/change/") :]
    assert '<td class="field-run_count">2</td>' in row[:2000] and "failed" in row[:2000]
    assert "greet" in staff.get("/admin/nexus_sse/workflow/?q=greet").content.decode()
    assert (
        "chat"
        not in staff.get("/admin/nexus_sse/workflow/?source__exact=admin")
        .content.decode()
        .split("<tbody>")[-1][:500]
    )


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"nodes": [{"id": "x", "type": "Nope"}]}, "unknown node type"),
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
            "cycle",
        ),
        (
            {
                "nodes": [{"id": "a", "type": "TemplateNode", "config": {"template": "{x}"}}],
                "connections": [{"from": "a", "output": "result", "to": "a", "input": "nope"}],
            },
            "has no input",
        ),
    ],
)
def test_invalid_definitions_are_shown_on_the_form_and_never_saved(staff, definition, message):
    response = staff.post("/admin/nexus_sse/workflow/add/", definition_post("broken", definition))
    assert response.status_code == 200  # the form again, with errors
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors["definition"])
    assert not Workflow.objects.filter(slug="broken").exists()


def test_field_errors_for_policy_and_schema(staff):
    good = {"nodes": [{"id": "t", "type": "TemplateNode", "config": {"template": "Hi {name}"}}]}
    response = staff.post(
        "/admin/nexus_sse/workflow/add/",
        definition_post("x", good, rate_limit="often", access="permission", input_schema='{"type": 7}'),
    )
    errors = response.context["adminform"].form.errors
    assert set(errors) >= {"rate_limit", "permission", "input_schema"}
    response = staff.post("/admin/nexus_sse/workflow/add/", definition_post("hello", good))
    assert response.status_code == 302 and Workflow.objects.get(slug="hello").source == "admin"


def test_code_workflows_are_read_only_but_for_policy(staff):
    chat = Workflow.objects.get(slug="chat")
    page = staff.get(f"/admin/nexus_sse/workflow/{chat.pk}/change/")
    form_fields = set(page.context["adminform"].form.fields)
    assert form_fields == {"is_active", "access", "permission", "rate_limit"}
    assert "deletelink" not in page.content.decode()
    response = staff.post(
        f"/admin/nexus_sse/workflow/{chat.pk}/change/",
        {"access": "authenticated", "permission": "", "rate_limit": "3/min"},
    )
    assert response.status_code == 302
    chat.refresh_from_db()
    assert (chat.access, chat.rate_limit, chat.is_active, chat.source) == (
        "authenticated",
        "3/min",
        False,
        "code",
    )


def test_actions_enable_disable_and_duplicate(staff):
    chat = Workflow.objects.get(slug="chat")
    staff.post("/admin/nexus_sse/workflow/", {"action": "disable", "_selected_action": [chat.pk]})
    assert not Workflow.objects.get(slug="chat").is_active
    staff.post("/admin/nexus_sse/workflow/", {"action": "enable", "_selected_action": [chat.pk]})
    assert Workflow.objects.get(slug="chat").is_active
    staff.post("/admin/nexus_sse/workflow/", {"action": "duplicate", "_selected_action": [chat.pk]})
    copy = Workflow.objects.get(slug="chat-copy")
    assert copy.source == "admin" and copy.definition == chat.definition and not copy.is_active


def test_duplicate_keeps_the_access_policy_so_enabling_the_copy_opens_nothing(staff):
    from django.contrib.auth.models import AnonymousUser

    from nexus_sse.access import may_execute

    greet = Workflow.objects.get(slug="greet")
    greet.access, greet.permission, greet.rate_limit = "permission", "nexus_sse.view_run", "3/min"
    greet.save()
    staff.post("/admin/nexus_sse/workflow/", {"action": "duplicate", "_selected_action": [greet.pk]})
    copy = Workflow.objects.get(slug="greet-copy")
    assert (copy.access, copy.permission, copy.rate_limit) == ("permission", "nexus_sse.view_run", "3/min")
    staff.post("/admin/nexus_sse/workflow/", {"action": "enable", "_selected_action": [copy.pk]})
    copy.refresh_from_db()
    assert copy.is_active
    assert not may_execute(AnonymousUser(), copy)
    assert not may_execute(factories.user("someone"), copy)


def test_try_it_page_builds_a_form_from_the_input_schema(staff):
    typed = Workflow.objects.get(slug="typed")
    page = staff.get(f"/admin/nexus_sse/workflow/{typed.pk}/try/").content.decode()
    assert 'name="count" type="number"' in page and 'data-type="integer"' in page
    assert 'name="flag" type="checkbox"' in page and '<textarea id="input-tags"' in page
    assert 'data-execute-url="/workflows/typed/execute"' in page and "nexus_sse/admin/live.js" in page
    assert "<script>" not in page.split("nexus-try")[1]  # no inline script


def test_run_pages_show_the_event_log_and_cancel_finished_runs_harmlessly(staff):
    run = Run.objects.create(
        workflow=Workflow.objects.get(slug="greet"),
        status="completed",
        inputs={"name": "x"},
        result={"result": "Hello, x!"},
    )
    RunEvent.objects.create(run=run, seq=1, event="start", data={"workflow_id": "greet"})
    listing = staff.get("/admin/nexus_sse/run/?status__exact=completed").content.decode()
    assert str(run.pk) in listing
    detail = staff.get(f"/admin/nexus_sse/run/{run.pk}/change/").content.decode()
    assert "Hello, x!" in detail and "workflow_id" in detail and "nexus-live" not in detail
    response = staff.post(
        "/admin/nexus_sse/run/", {"action": "cancel", "_selected_action": [run.pk]}, follow=True
    )
    assert "completed" in response.content.decode()


def test_a_live_run_page_follows_its_events(staff):
    run = Run.objects.create(
        workflow=Workflow.objects.get(slug="slow"), status="running", executor="elsewhere:1:x"
    )
    detail = staff.get(f"/admin/nexus_sse/run/{run.pk}/change/").content.decode()
    assert f'data-events-url="/runs/{run.pk}/events"' in detail


def test_cancel_from_the_admin_fails_a_run_whose_executor_is_gone(staff):
    run = Run.objects.create(
        workflow=Workflow.objects.get(slug="slow"), status="running", executor="gone:1:x"
    )
    staff.post("/admin/nexus_sse/run/", {"action": "cancel", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.status == "failed" and run.error == "interrupted"


def test_admin_pages_respect_model_permissions(nobody):
    chat = Workflow.objects.get(slug="chat")
    assert nobody.get("/admin/nexus_sse/workflow/").status_code == 403
    assert nobody.get(f"/admin/nexus_sse/workflow/{chat.pk}/try/").status_code == 403
    assert nobody.get("/admin/nexus_sse/run/").status_code == 403
    viewer = Client()
    viewer.force_login(factories.user("viewer", staff=True, perms=("nexus_sse.view_workflow",)))
    page = viewer.get(f"/admin/nexus_sse/workflow/{chat.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()  # view only
    assert (
        viewer.post(f"/admin/nexus_sse/workflow/{chat.pk}/change/", {"access": "public"}).status_code == 403
    )
    assert viewer.post(
        "/admin/nexus_sse/workflow/", {"action": "disable", "_selected_action": [chat.pk]}
    ).status_code in (200, 302)
    assert Workflow.objects.get(slug="chat").is_active  # no change permission: the action was not offered


def test_the_workflow_form_has_every_editable_field_of_the_model():
    from nexus_sse.forms import WorkflowForm

    editable = [f.name for f in Workflow._meta.fields if f.editable and not f.auto_created]
    assert list(WorkflowForm.base_fields) == editable
