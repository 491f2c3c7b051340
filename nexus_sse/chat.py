"""The built-in chat page: chat/ and chat/<workflow>/ for any workflow with an LLM agent node."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie

from nexus_sse import access, conf, registry
from nexus_sse.exceptions import NexusError
from nexus_sse.links import url_template
from nexus_sse.models import Workflow
from nexus_sse.workflows.builtin import LLMAgentNode


def chat_workflows(user: Any) -> list[dict[str, Any]]:
    """Active workflows the user may run that take a chat message (an LLMAgentNode with open inputs)."""
    found = []
    for workflow in Workflow.objects.filter(is_active=True).order_by("slug"):
        try:
            graph = registry.graph_for(workflow)
        except NexusError:
            continue
        agents = [
            n
            for n in graph.nodes.values()
            if isinstance(n, LLMAgentNode) and {"message", "messages"} & set(graph.open_inputs(n.node_id))
        ]
        if not agents or not access.may_execute(user, workflow):
            continue
        alias = agents[0].config.get("provider") or conf.get("DEFAULT_LLM_PROVIDER")
        backend = (conf.get("LLM_PROVIDERS").get(alias) or {}).get("BACKEND", alias)
        found.append(
            {
                "slug": workflow.slug,
                "name": workflow.name or workflow.slug,
                "demo": backend == "offline",
                "provider": alias,
            }
        )
    return found


@ensure_csrf_cookie
def chat_page(request: HttpRequest, workflow: str | None = None) -> HttpResponse:
    """Render the chat page; all URLs it calls come from here (works under any prefix)."""
    match = request.resolver_match
    namespace = (match and match.namespace) or "nexus_sse"
    options = chat_workflows(request.user)
    if workflow is not None and workflow not in {o["slug"] for o in options}:
        raise Http404("no chat workflow with that name")
    selected = (
        workflow
        or next((o["slug"] for o in options if o["slug"] == "chat"), None)
        or (options[0]["slug"] if options else None)
    )
    context = {
        "workflows": options,
        "selected": selected,
        "execute_url": reverse(f"{namespace}:execute", args=["__workflow__"]),
        "events_url": url_template(f"{namespace}:run-events", "__run__"),
        "cancel_url": url_template(f"{namespace}:run-cancel", "__run__"),
        "status_url": url_template(f"{namespace}:run-detail", "__run__"),
    }
    return render(request, "nexus_sse/chat.html", context)
