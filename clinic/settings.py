"""Settings for the clinic back end: one module, read from the environment.

Every variable is listed in `.env.example`. Local defaults are safe and need no
services (SQLite file and a filesystem broker under `var/`); with
DJANGO_ENV=production the settings fail closed: no default secret key, DEBUG
off, HTTPS-only cookies and HSTS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import zoneinfo
from pathlib import Path

from clinic.env import (
    BASE_DIR,
    EnvError,
    env_bool,
    env_choice,
    env_database,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    env_trusted_proxies,
    redis_database,
    redis_url_with_database,
)
from clinic.observability.errors import sentry_init
from clinic.redis_sentinel import sentinel_nodes

DJANGO_ENV = env_choice("DJANGO_ENV", "development", {"development", "production", "test"})
PRODUCTION = DJANGO_ENV == "production"

# Local state of the embedded default: SQLite file, filesystem broker, cache, mail.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

# --- core ---------------------------------------------------------------------------

_INSECURE_KEY = "django-insecure-local-development-key-never-use-in-production"
SECRET_KEY = env_str("SECRET_KEY") or ("" if PRODUCTION else _INSECURE_KEY)
if PRODUCTION and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure")):
    raise EnvError(
        "SECRET_KEY: production needs a random key of at least 50 characters "
        '(python -c "import secrets; print(secrets.token_urlsafe(64))")'
    )

DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
if PRODUCTION and not ALLOWED_HOSTS:
    raise EnvError("ALLOWED_HOSTS: production needs the host names the site is served on")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

TIME_ZONE = env_str("TIME_ZONE", "UTC")
if TIME_ZONE not in zoneinfo.available_timezones():
    raise EnvError(f"TIME_ZONE: unknown time zone {TIME_ZONE!r}")
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en"

INSTALLED_APPS = [
    "clinic",
    "treatments",
    "patients",
    "intake",
    "sessions.apps.SessionsConfig",
    "outcomes",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "phonenumber_field",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
]

MIDDLEWARE = [
    # Outermost: every response (redirects and errors too) carries a request id and gets one log line.
    "clinic.security.middleware.RequestIdMiddleware",
    "clinic.observability.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "clinic.security.signin.SessionTimeoutMiddleware",
    "clinic.security.signin.TwoFactorRequiredMiddleware",
    # After authentication: staff read and type times in their clinic's zone.
    "clinic.security.middleware.ClinicTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into a 429.
    "axes.middleware.AxesMiddleware",
]

if PRODUCTION:
    # gunicorn serves the collected static files (admin, API docs); runserver does it in development.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "clinic.urls"
WSGI_APPLICATION = "clinic.wsgi.application"
AUTH_USER_MODEL = "clinic.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "admin:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

AUTHENTICATION_BACKENDS = [
    "clinic.security.signin.ThrottledSignInBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

if DJANGO_ENV == "test":
    # Django's advice for test runs: a fast hasher; the real one costs ~0.3 s a login.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# --- database -----------------------------------------------------------------------

# Production fails closed: without these it would run on the embedded SQLite file and
# filesystem broker, and several nodes would each keep their own data.
_REQUIRED_IN_PRODUCTION = {
    "DATABASE_URL": "production needs PostgreSQL (postgres://user:password@host:5432/dbname)",
    "REDIS_URL": "production needs Redis for the task broker (redis://host:6379/0 or sentinel://host:26379/0)",
}
if PRODUCTION:
    _missing = [f"{name}: {why}" for name, why in _REQUIRED_IN_PRODUCTION.items() if not env_str(name)]
    if _missing:
        raise EnvError("\n".join(_missing))

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'clinic.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if PRODUCTION:
        raise EnvError(f"DATABASE_URL: {_REQUIRED_IN_PRODUCTION['DATABASE_URL']}, not SQLite")
    # Writers queue up instead of interleaving: the embedded default relies on this
    # (with the same service-level checks as PostgreSQL) where PostgreSQL has
    # exclusion constraints and row locks.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# --- broker and cache ---------------------------------------------------------------

# REDIS_URL is the broker; the cache lives in another database (REDIS_CACHE_URL, default: the
# broker's server, database + 1), because they need opposite eviction policies: the cache may
# drop keys (allkeys-lru), the broker must never (noeviction). docs/operations.md says more.
# Tests share one database per run (one Redis database per test run on a shared machine).
REDIS_URL = env_redis_url("REDIS_URL")
REDIS_CACHE_URL = env_redis_url("REDIS_CACHE_URL")
if REDIS_URL and not REDIS_CACHE_URL:
    REDIS_CACHE_URL = (
        REDIS_URL if DJANGO_ENV == "test" else redis_url_with_database(REDIS_URL, redis_database(REDIS_URL) + 1)
    )
if PRODUCTION and REDIS_CACHE_URL == REDIS_URL:
    raise EnvError("REDIS_CACHE_URL: must not be the broker's database (REDIS_URL): they need different eviction")
# The master's name for sentinel:// URLs (broker and cache).
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "")
if any(url and url.startswith("sentinel://") for url in (REDIS_URL, REDIS_CACHE_URL)) and not REDIS_SENTINEL_MASTER:
    raise EnvError("REDIS_SENTINEL_MASTER: sentinel:// URLs need the name of the master the sentinels watch")
BROKER_DIR = VAR_DIR / "broker"

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    if REDIS_URL.startswith("sentinel://"):
        CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    # A Redis that stops answering costs a request two seconds, then the rate limiter
    # fails open (clinic.degrade) instead of every request hanging.
    _cache_options = {"socket_connect_timeout": 2, "socket_timeout": 2}
    if REDIS_CACHE_URL.startswith("sentinel://"):
        _cache_options |= {"pool_class": "clinic.redis_sentinel.SentinelPool", "master_name": REDIS_SENTINEL_MASTER}
    # One beat across every node. RedBeat takes a lock in the broker's Redis at start and
    # extends it on every tick (at least every BEAT_MAX_LOOP_INTERVAL seconds); a second beat
    # started by mistake waits for that lock as a standby and takes over once the lock lapses
    # (at most BEAT_LOCK_TIMEOUT_SECONDS after the first beat died). The schedule itself
    # stays the one in clinic/celery.py; RedBeat keeps its due times in Redis.
    CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
    CELERY_REDBEAT_KEY_PREFIX = "clinic:redbeat"
    CELERY_REDBEAT_REDIS_OPTIONS = {"socket_connect_timeout": 5, "socket_timeout": 5}
    if REDIS_URL.startswith("sentinel://"):
        # RedBeat finds the master through the same sentinels, in its own URL scheme and options.
        _nodes, _password, _db = sentinel_nodes(REDIS_URL)
        CELERY_REDBEAT_REDIS_URL = "redis-sentinel://"
        CELERY_REDBEAT_REDIS_OPTIONS |= {
            "sentinels": _nodes, "service_name": REDIS_SENTINEL_MASTER, "db": _db, "password": _password,
        }  # fmt: skip
    else:
        CELERY_REDBEAT_REDIS_URL = CELERY_BROKER_URL
    CELERY_BEAT_MAX_LOOP_INTERVAL = 10
    CELERY_REDBEAT_LOCK_TIMEOUT = env_int("BEAT_LOCK_TIMEOUT_SECONDS", 60, minimum=CELERY_BEAT_MAX_LOOP_INTERVAL * 2)
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # A list: Django would split a string at `;`, which joins sentinels.
            "LOCATION": [REDIS_CACHE_URL],
            "OPTIONS": _cache_options,
        }
    }
else:
    # Embedded broker: kombu's filesystem transport delivers to a real worker
    # through files under var/broker, so `make run` needs no Redis.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- email --------------------------------------------------------------------------

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", default=False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise EnvError("EMAIL_USE_TLS and EMAIL_USE_SSL: set at most one of them")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
EMAIL_FILE_PATH = str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Clinic <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Absolute base of links sent to patients (intake links, unsubscribe links). Outside production
# it follows PORT, the port `make run` serves on, so printed and e-mailed links reach this server.
PORT = env_int("PORT", 8000, minimum=1)
PUBLIC_BASE_URL = (env_str("PUBLIC_BASE_URL", f"http://127.0.0.1:{8000 if PRODUCTION else PORT}") or "").rstrip("/")

# Region assumed for phone numbers typed without a country code (stored as E.164).
PHONENUMBER_DEFAULT_REGION = env_str("PHONENUMBER_DEFAULT_REGION", "CA")
# Webhook endpoints must be https in production; plain http (e.g. a local receiver) elsewhere.
WEBHOOK_ALLOW_HTTP = not PRODUCTION
# Deliveries connect to public addresses only in production (no loopback, private network,
# link-local or cloud metadata addresses: clinic/webhooks/outbound.py). Turn on for a receiver on the
# clinic's own network; always on outside production (local receivers).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=not PRODUCTION)
# --- messages to patients (clinic/messaging/) -------------------------------------

# SMS provider: clinic.messaging.channels.ConsoleSmsBackend (prints), FileSmsBackend (one JSON file per
# SMS under VAR_DIR/sms) or TwilioSmsBackend (needs the TWILIO_* variables).
SMS_BACKENDS = {
    "clinic.messaging.channels.ConsoleSmsBackend",
    "clinic.messaging.channels.FileSmsBackend",
    "clinic.messaging.channels.TwilioSmsBackend",
}
SMS_BACKEND = env_str("SMS_BACKEND", "clinic.messaging.channels.ConsoleSmsBackend")
# The backends lived in clinic/messaging/channels.py before clinic/messaging/ existed; old .env files keep working.
if SMS_BACKEND.startswith("clinic.messaging.channels."):
    SMS_BACKEND = SMS_BACKEND.replace("clinic.messaging.channels.", "clinic.messaging.channels.", 1)
if SMS_BACKEND not in SMS_BACKENDS:
    raise EnvError(f"SMS_BACKEND: expected one of {', '.join(sorted(SMS_BACKENDS))}, got {SMS_BACKEND!r}")
SMS_FILE_PATH = str(VAR_DIR / "sms")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com")
if not TWILIO_API_BASE.startswith(("https://", "http://")):
    raise EnvError(f"TWILIO_API_BASE: expected an http(s) URL, got {TWILIO_API_BASE!r}")
if PRODUCTION and SMS_BACKEND.endswith("TwilioSmsBackend") and not TWILIO_API_BASE.startswith("https://"):
    raise EnvError("TWILIO_API_BASE: production needs https://")
# The sweeper: rows claimed per transaction and per beat tick (a backlog drains over ticks).
MESSAGE_BATCH_SIZE = env_int("MESSAGE_BATCH_SIZE", 200, minimum=1)
MESSAGE_MAX_PER_TICK = env_int("MESSAGE_MAX_PER_TICK", 2000, minimum=1)
# Claimed rows per send task: one task delivers them one after the other (a chunk of at most
# 200 is a batch; a smaller one spreads a batch over more worker processes).
MESSAGE_SEND_CHUNK_SIZE = env_int("MESSAGE_SEND_CHUNK_SIZE", 50, minimum=1)
# A chunk reads its rows (and what they are about) together and again whenever that read is
# older than this: each message is re-checked at most this many seconds before its send.
MESSAGE_RECHECK_SECONDS = env_int("MESSAGE_RECHECK_SECONDS", 2, minimum=0)
# A `sending` claim not finished within the lease is taken again (its worker died). The sender
# extends it when less than half is left before a send: keep half of it well above the slowest
# provider call.
MESSAGE_CLAIM_LEASE_SECONDS = env_int("MESSAGE_CLAIM_LEASE_SECONDS", 300, minimum=1)
MESSAGE_MAX_ATTEMPTS = env_int("MESSAGE_MAX_ATTEMPTS", 5, minimum=1)
MESSAGE_RETRY_BASE_SECONDS = env_int("MESSAGE_RETRY_BASE_SECONDS", 60, minimum=1)

# --- static files -------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- REST API -----------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "clinic.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["clinic.api.conventions.ClinicAccess"],
    "DEFAULT_PAGINATION_CLASS": "clinic.api.conventions.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "clinic.api.inputs.StrictFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON only: one body format to validate (anything else is 415).
    "DEFAULT_PARSER_CLASSES": ["clinic.api.inputs.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": ["clinic.api.conventions.ClinicRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "clinic.api.schema.ClinicAutoSchema",
    "EXCEPTION_HANDLER": "clinic.api.conventions.exception_handler",
    "DATETIME_FORMAT": "iso-8601",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Content negotiation by Accept only: `?format=` would be a query parameter no filter knows.
    "URL_FORMAT_OVERRIDE": None,
}
# The OpenAPI schema and the Swagger docs are public in development and test (Schemathesis
# reads them anonymously); in production they need a staff session or an API key.
API_DOCS_PUBLIC = env_bool("API_DOCS_PUBLIC", default=not PRODUCTION)
SPECTACULAR_SETTINGS = {
    "TITLE": "Soft-tissue clinic API",
    "DESCRIPTION": "Patients, intake, booking, treatment notes and reminders for soft-tissue therapy clinics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets served from the app itself: no CDN, works offline and under a strict CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "CancelledByEnum": "sessions.models.CancelledBy",
        "AppointmentStatusEnum": "sessions.models.AppointmentStatus",
        "WaitlistStatusEnum": "sessions.models.WaitlistStatus",
        "OfferStatusEnum": "sessions.models.OfferStatus",
        "NoteStatusEnum": "sessions.models.NoteStatus",
        # Patients' preferred channel and a message's channel are the same two choices.
        "ChannelEnum": "patients.models.Channel",
        # Intake and outcome links share their three states (open, submitted, revoked).
        "LinkStatusEnum": "outcomes.models.OutcomeLinkStatus",
        "OutcomeResponseStatusEnum": "outcomes.models.ResponseStatus",
    },
    # Error responses (one shape, every operation) are added in one place.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clinic.api.schema.add_error_responses",
        "clinic.api.schema.add_tags",
        "clinic.api.schema.share_request_bodies",
        "clinic.api.schema_examples.add_examples",
    ],
}
# API bodies are small JSON documents; anything near this is a mistake or an attack.
# A larger body is 413 in the API's error format (clinic.api.conventions.exception_handler).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# --- security -----------------------------------------------------------------------

# Sign-in throttling (django-axes): after LOGIN_FAILURE_LIMIT failures for one username
# from one address, sign-in answers 429 for LOGIN_COOLOFF_MINUTES. The cool-off is
# always finite so an attacker cannot lock staff out for good.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused attempt during the cool-off is not recorded, so it cannot restart the cool-off:
# it ends LOGIN_COOLOFF_MINUTES after the failure that caused it, whatever happens meanwhile.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HTTP_RESPONSE_CODE = 429
# The client's address behind proxies, the same for every user of it (clinic.security.addresses):
# empty (REMOTE_ADDR is the client), a hop count, or the proxies' addresses/networks.
TRUSTED_PROXIES = env_trusted_proxies("TRUSTED_PROXIES")
AXES_CLIENT_IP_CALLABLE = "clinic.security.addresses.client_ip"
AXES_VERBOSE = False

# Audit checkpoints (clinic.security.audit): the head of each audit chain, HMAC-signed with this key
# so that someone who can rewrite the database cannot forge one. Default: derived from
# SECRET_KEY (rotating SECRET_KEY then invalidates old checkpoints; set a dedicated key to
# rotate them independently). AUDIT_CHECKPOINT_FILE, when set, also receives each checkpoint
# as a JSON line: keep it off the database host so one attacker cannot rewrite both.
AUDIT_CHECKPOINT_KEY = (
    env_str("AUDIT_CHECKPOINT_KEY")
    or hmac.new(SECRET_KEY.encode(), b"clinic.security.audit.checkpoint", hashlib.sha256).hexdigest()
)
if len(AUDIT_CHECKPOINT_KEY) < 32:
    raise EnvError("AUDIT_CHECKPOINT_KEY: needs at least 32 characters")
AUDIT_CHECKPOINT_FILE = env_str("AUDIT_CHECKPOINT_FILE", "")

# Staff sessions end after inactivity (per clinic, default 30 minutes) and after an
# absolute maximum (per clinic, default 12 hours): clinic.security.signin.SessionTimeoutMiddleware.
SESSION_COOKIE_AGE = 12 * 60 * 60
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Clinic")

# Content-Security-Policy for every page (admin, patient pages, API docs): nothing
# from other origins, no inline script.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    # Probes and the metrics scraper speak plain HTTP inside the network (clinic/health.py).
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- observability (clinic/observability/, clinic/health.py) ---------------------------

# json: one JSON object per line (production's default; what log collectors read); plain: text.
LOG_FORMAT = env_choice("LOG_FORMAT", "json" if PRODUCTION else "plain", {"json", "plain"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "clinic.observability.jsonlog.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    # django-axes logs every attempt at INFO; the audit trail already records sign-ins.
    # django.server repeats what clinic.request says about each request under runserver.
    "loggers": {"axes": {"level": "WARNING"}, "django.server": {"level": "WARNING"}},
    "root": {
        "handlers": ["console"],
        "level": env_choice("LOG_LEVEL", "info", {"debug", "info", "warning", "error"}).upper(),
    },
}

# Workers and beat log through LOGGING too (JSON lines), instead of Celery's own root handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT != "json"

# /metrics answers a scraper sending `Authorization: Bearer <METRICS_TOKEN>`; unset, it is a 404.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise EnvError("METRICS_TOKEN: needs at least 32 characters")
# /readyz: beat's heartbeat (sent every minute) may be this old; the oldest due message may
# wait this long before the node reports not ready.
BEAT_HEARTBEAT_MAX_AGE = env_int("BEAT_HEARTBEAT_MAX_AGE", 180, minimum=60)
OUTBOX_MAX_LAG = env_int("OUTBOX_MAX_LAG", 900, minimum=60)

# Error tracking: Sentry when SENTRY_DSN is set, patient data scrubbed (clinic.observability.errors).
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    sentry_init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", DJANGO_ENV),
        release=env_str("SENTRY_RELEASE", ""),
    )
