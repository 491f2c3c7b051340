"""Short-lived signed stream tokens, for EventSource (which cannot send an Authorization header).

A token is signed with SECRET_KEY (django.core.signing), expires after STREAM_TOKEN_SECONDS and is
bound to one user and one workflow or one run, so a leaked URL opens nothing else and not for long.
"""

from __future__ import annotations

from typing import Any

from django.core import signing

from nexus_sse import conf
from nexus_sse.exceptions import AuthenticationError

SALT = "nexus_sse.stream-token"


def issue(user: Any, *, workflow: str | None = None, run: str | None = None) -> str:
    """A token for ``user`` (may be anonymous) to stream ``workflow`` or the run ``run``."""
    if (workflow is None) == (run is None):
        raise ValueError("bind a stream token to exactly one workflow or run")
    payload = {"u": user.pk if getattr(user, "is_authenticated", False) else None}
    payload["w" if workflow else "r"] = workflow or str(run)
    return signing.dumps(payload, salt=SALT, compress=True)


def verify(token: str) -> dict[str, Any]:
    """The token's payload; AuthenticationError when it is tampered with or expired."""
    try:
        return signing.loads(token, salt=SALT, max_age=conf.get("STREAM_TOKEN_SECONDS"))
    except signing.SignatureExpired:
        raise AuthenticationError("stream token expired; ask for a new one") from None
    except signing.BadSignature:
        raise AuthenticationError("invalid stream token") from None
