"""Settings of the nexus_sse demo site. Not for production: see docs/deployment.md."""

import os
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-insecure-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "daphne",  # first: makes `manage.py runserver` serve ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework.authtoken",  # Authorization: Token <key> for programs
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served offline
    "nexus_sse",
    "project",  # the demo workflows (project/workflows.py)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # Kept on purpose: nexus_sse streams must pass through GZip untouched (tested).
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("NEXUS_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("PGDATABASE", "nexus_sse"),
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "USER": os.environ.get("PGUSER", "postgres"),
            "CONN_MAX_AGE": 0,  # ASGI: connections are per request context; do not keep them
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

NEXUS_SSE: dict[str, Any] = {
    "KEEPALIVE_SECONDS": float(os.environ.get("NEXUS_SSE_KEEPALIVE", "15")),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # every line about a run carries its id
    "filters": {"run_id": {"()": "nexus_sse.logs.RunIdFilter"}},
    "formatters": {"run": {"format": "%(asctime)s %(levelname)s %(name)s run=%(run_id)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["run_id"], "formatter": "run"}},
    "loggers": {
        "nexus_sse": {"handlers": ["console"], "level": os.environ.get("NEXUS_SSE_LOG_LEVEL", "INFO")}
    },
}

# The REST API's schema and docs (nexus_sse.api adds the SSE endpoints to the schema).
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {
    "TITLE": "nexus_sse",
    "DESCRIPTION": "Workflows as resumable Server-Sent Events streams.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "nexus_sse.api.schema.add_sse_endpoints",
    ],
}

# CORS (django-cors-headers): which other sites' pages may call the API and open streams.
# Nexus' cors_origins=["https://example.com"] is CORS_ALLOWED_ORIGINS below.
CORS_ALLOWED_ORIGINS = [o for o in os.environ.get("NEXUS_CORS_ORIGINS", "").split(",") if o]
CORS_ALLOW_CREDENTIALS = os.environ.get("NEXUS_CORS_CREDENTIALS") == "1"
CORS_ALLOW_HEADERS = ["accept", "authorization", "content-type", "last-event-id", "x-csrftoken"]
CORS_EXPOSE_HEADERS = ["x-run-id", "retry-after"]
