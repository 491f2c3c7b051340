"""URL templates of the app's endpoints, under whatever prefix the site mounts it."""

from __future__ import annotations

from django.urls import reverse

# A run id every run URL pattern accepts, to reverse a URL before there is a run.
ANY_RUN = "00000000-0000-0000-0000-000000000000"


def url_template(viewname: str, placeholder: str, example: str = ANY_RUN) -> str:
    """The URL of ``viewname`` with ``placeholder`` in place of its one argument.

    Django cannot reverse a pattern without its argument: reverse it with ``example``, then swap.
    """
    head, _, tail = reverse(viewname, args=[example]).rpartition(example)
    return f"{head}{placeholder}{tail}"
