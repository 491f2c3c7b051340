"""Users, tokens, sessions and workflows for tests."""

from __future__ import annotations

import httpx
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client

from nexus_sse.models import Workflow


def user(
    name: str = "ann", *, staff: bool = False, superuser: bool = False, perms: tuple[str, ...] = ()
) -> User:
    account = User.objects.create_user(
        name, f"{name}@example.com", "pw", is_staff=staff or superuser, is_superuser=superuser
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        account.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return account


def token(account: User) -> dict[str, str]:
    from rest_framework.authtoken.models import Token

    return {"Authorization": f"Token {Token.objects.get_or_create(user=account)[0].key}"}


def session_cookies(account: User) -> dict[str, str]:
    """A real session (database-backed) for ``account``, plus a CSRF cookie."""
    client = Client()
    client.force_login(account)
    client.get("/chat/")  # ensure_csrf_cookie: sets csrftoken
    return {
        settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value,
        "csrftoken": client.cookies["csrftoken"].value,
    }


def set_policy(slug: str, **fields) -> Workflow:
    Workflow.objects.filter(slug=slug).update(**fields)
    return Workflow.objects.get(slug=slug)


def admin_workflow(slug: str = "hello", **fields) -> Workflow:
    definition = {"nodes": [{"id": "hi", "type": "TemplateNode", "config": {"template": "Hi {name}"}}]}
    return Workflow.objects.create(slug=slug, name=slug, definition=definition, source="admin", **fields)


def cookie_client(base_url: str, cookies: dict[str, str]) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=10)
    for name, value in cookies.items():
        client.cookies.set(name, value, domain="127.0.0.1")
    return client
