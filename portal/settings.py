"""One settings file: everything from the environment, with embedded defaults so that
`make run` needs nothing installed (SQLite, kombu's filesystem broker, a file cache)."""

from pathlib import Path

import dj_database_url
from kombu import Exchange, Queue

from portal.env import envbool, envfloat, envint, envlist, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)
SECRET_KEY = envstr("SECRET_KEY", "dev-only-insecure-key-set-SECRET_KEY-in-production")
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
# The address phones and browsers reach the portal at; used in pairing and provisioning URLs.
PUBLIC_BASE_URL = envstr("PUBLIC_BASE_URL", "http://localhost:8000").rstrip("/")

if envbool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "portal",
    "devices",
    "enrollment",
    "policies",
    "gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.tenant",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run` has six processes writing to one file (web, three workers, beat, the SIP edge):
    # WAL lets readers go on while one writes, IMMEDIATE takes the write lock when a transaction
    # starts (a transaction that read first and then found another writer would fail at once with
    # "database is locked", whatever the timeout), and the timeout is how long a writer waits.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite (`make run`) ignores an index's INCLUDE columns, which only let PostgreSQL answer from the
# index alone (devices.Device's device_tenant_state_listed); the index works the same without them.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
AUTH_USER_MODEL = "portal.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Shared between processes (rate limits, lockouts): Redis in production, files by default.
CACHE_URL = envstr("CACHE_URL", "")
if CACHE_URL.startswith("redis://"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": envstr("CACHE_KEY_PREFIX", ""),
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# Serve straight from the finders so runserver and gunicorn work without collectstatic.
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.api.permissions.IsTenantMember"],
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.KeysetCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exceptions.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "SIP Gateway Portal API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "Onboard, enroll, sign in and manage SIP phones. `Authorization: Token <key>`.",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Celery: kombu's filesystem transport needs no server; redis:// in production and tests.
CELERY_BROKER_URL = envstr("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
# Test runs side by side on one Redis each use a queue of their own (make test sets it).
CELERY_TASK_DEFAULT_QUEUE = envstr("CELERY_TASK_DEFAULT_QUEUE", "celery")
# Three lanes, so that one kind of work never waits behind another: NOTIFYs people ask for (restart,
# resync, the check-sync after enrollment, sign-in or sign-out) are sent at once; the policy sync's
# NOTIFYs, hourly and on registration, each of which holds its worker for Timer F (32 s) when the
# phone is gone, have their own; imports, code generation and sweeps keep the default queue. A
# worker started without -Q serves all three; `make run` and the README give each its own worker.
COMMANDS_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}.commands"
SYNC_QUEUE = f"{CELERY_TASK_DEFAULT_QUEUE}.sync"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name) for name in (CELERY_TASK_DEFAULT_QUEUE, COMMANDS_QUEUE, SYNC_QUEUE)
]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The one place where periodic work is scheduled (seconds).
CELERY_BEAT_SCHEDULE: dict = {
    "device-commands-resume": {
        "task": "gateway.tasks.device_commands_resume",
        "schedule": envfloat("DEVICE_COMMAND_RESUME_SECONDS", 60.0),
    },
    # Wipe expired verification codes (they already stop working at expiry; this removes them).
    "verification-codes-sweep": {"task": "enrollment.tasks.verification_codes_sweep", "schedule": 300.0},
    # Mark pairing (sign-in) requests past their 15 minutes expired.
    "pairing-requests-sweep": {"task": "enrollment.tasks.pairing_requests_sweep", "schedule": 300.0},
    # Check-sync every registered, signed-in phone behind its policy version: in sync within the hour.
    "policy-sync": {"task": "policies.tasks.policy_sync_hourly", "schedule": envfloat("POLICY_SYNC_SECONDS", 3600.0)},
    # Enrolled phones nobody signed in to and signed-in phones unseen too long leave the inventory.
    "devices-offboard-unseen": {"task": "devices.tasks.devices_offboard_unseen", "schedule": 86400.0},
}
# Auto-offboarding (DESIGN.md, as Teams does it): days unseen before a phone leaves the inventory.
AUTO_OFFBOARD_ENROLLED_DAYS = envint("AUTO_OFFBOARD_ENROLLED_DAYS", 14)
AUTO_OFFBOARD_SIGNED_IN_DAYS = envint("AUTO_OFFBOARD_SIGNED_IN_DAYS", 30)
for _name, _days in (("AUTO_OFFBOARD_ENROLLED_DAYS", AUTO_OFFBOARD_ENROLLED_DAYS),
                     ("AUTO_OFFBOARD_SIGNED_IN_DAYS", AUTO_OFFBOARD_SIGNED_IN_DAYS)):
    if _days < 1:  # 0 would offboard every phone not registered at that very moment
        raise ValueError(f"{_name}={_days} must be at least 1 day")

# Verification codes are stored encrypted with this key (defaults to one derived from SECRET_KEY).
VERIFICATION_CODE_KEY = envstr("VERIFICATION_CODE_KEY", "")
# Pairing codes are matched by an HMAC keyed with this (defaults to one derived from SECRET_KEY).
PAIRING_CODE_KEY = envstr("PAIRING_CODE_KEY", "")

# SIP edge and NOTIFY sender.
SIP_EDGE_HOST = envstr("SIP_EDGE_HOST", "127.0.0.1")
SIP_EDGE_PORT = envint("SIP_EDGE_PORT", 5060)
SIP_T1 = envfloat("SIP_T1", 0.5)
# NOTIFYs leave from this address (their Via and Contact name it); the SIP edge's host by default.
SIP_NOTIFY_HOST = envstr("SIP_NOTIFY_HOST", SIP_EDGE_HOST)
SIP_NOTIFY_CONCURRENCY = envint("SIP_NOTIFY_CONCURRENCY", 200)
# A worker that holds a command longer than this is presumed dead; another may take it over.
DEVICE_COMMAND_LEASE_SECONDS = envint("DEVICE_COMMAND_LEASE_SECONDS", 300)
DEVICE_COMMAND_MAX_ATTEMPTS = envint("DEVICE_COMMAND_MAX_ATTEMPTS", 3)

# Provisioning server (/provision/<key>/<file>).
# The transport provisioned phones use to reach the SIP edge: udp, tcp or tls.
SIP_EDGE_TRANSPORT = envstr("SIP_EDGE_TRANSPORT", "udp").lower()
if SIP_EDGE_TRANSPORT not in ("udp", "tcp", "tls"):
    raise ValueError(f"SIP_EDGE_TRANSPORT={SIP_EDGE_TRANSPORT!r} is not udp, tcp or tls")
# What the phones' Sign-in and Sign-out keys dial; clear of the codes Teams phones already use
# (*30*-*35* do-not-disturb and forwarding, *55* enrollment, *99* voicemail).
FEATURE_CODE_SIGN_IN = envstr("FEATURE_CODE_SIGN_IN", "*70*")
FEATURE_CODE_SIGN_OUT = envstr("FEATURE_CODE_SIGN_OUT", "*71*")
for _name, _code in (("FEATURE_CODE_SIGN_IN", FEATURE_CODE_SIGN_IN), ("FEATURE_CODE_SIGN_OUT", FEATURE_CODE_SIGN_OUT)):
    _reserved = {"*30*", "*31*", "*32*", "*33*", "*34*", "*35*", "*55*", "*99*"}
    if not (len(_code) > 2 and _code[0] == _code[-1] == "*" and _code[1:-1].isdigit()) or _code in _reserved:
        raise ValueError(f"{_name}={_code!r} must look like *70* and not be one of {sorted(_reserved)}")
if FEATURE_CODE_SIGN_IN == FEATURE_CODE_SIGN_OUT:
    raise ValueError("FEATURE_CODE_SIGN_IN and FEATURE_CODE_SIGN_OUT must differ")
# Plain-HTTP fetches are refused (403); on in production, where a TLS proxy fronts the portal.
PROVISIONING_REQUIRE_HTTPS = envbool("PROVISIONING_REQUIRE_HTTPS", False)
# Misses (unknown key or MAC, disabled tenant) per source address before it gets 429 for the window.
PROVISIONING_MISS_LIMIT = envint("PROVISIONING_MISS_LIMIT", 20)
PROVISIONING_MISS_WINDOW_SECONDS = envint("PROVISIONING_MISS_WINDOW_SECONDS", 300)
# Behind a proxy, the phone's address is the last one the proxy appended to X-Forwarded-For.
TRUST_X_FORWARDED_FOR = envbool("TRUST_X_FORWARDED_FOR", False)

# Policy sync: a registration refresh check-syncs a device behind at most this often; the hourly
# fan-out writes commands CHUNK devices per transaction and sends them BATCH per worker task.
POLICY_SYNC_MIN_INTERVAL_SECONDS = envint("POLICY_SYNC_MIN_INTERVAL_SECONDS", 300)
POLICY_SYNC_CHUNK = envint("POLICY_SYNC_CHUNK", 10000)
POLICY_SYNC_BATCH = envint("POLICY_SYNC_BATCH", 1000)

INVENTORY_PAGE_SIZE = envint("INVENTORY_PAGE_SIZE", 50)
# CSV imports check, stage and write this many rows at a time, and report progress after each batch.
IMPORT_CHUNK_ROWS = envint("IMPORT_CHUNK_ROWS", 20000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
