"""The demo site's ASGI app plus static files (uvicorn and daphne serve none by themselves)."""

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from project.asgi import application as site

application = ASGIStaticFilesHandler(site)
