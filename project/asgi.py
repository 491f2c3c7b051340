"""ASGI entry point of the demo site (daphne and uvicorn), with nexus_sse's fast path in front."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from nexus_sse.asgi import get_asgi_application  # after the settings module is chosen

application = get_asgi_application()
