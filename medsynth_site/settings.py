"""MedSynth Studio settings: one module, every value read from the environment.

With no environment at all the app runs embedded: a SQLite file and a filesystem
Celery broker in the data folder, and the local demo LLM. `.env.example` lists
every variable; the README's configuration table explains each one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

from generation.local_model import MODEL_ALIAS as LOCAL_MODEL_ALIAS

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name)
    if not raw:
        return default
    return raw.lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    return int(raw) if raw else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DATA_DIR = Path(env_str("MEDSYNTH_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once and kept in DATA_DIR."""
    if configured := env_str("SECRET_KEY"):
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(64))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "import_export",
    "axes",
    "generation",
    "review",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked @login_not_required; an htmx
    # request without one leaves the page for the login form instead of swapping it in.
    "medsynth_site.middleware.HtmxLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns lockouts raised by the backend into responses.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "medsynth_site.urls"
WSGI_APPLICATION = "medsynth_site.wsgi.application"

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
                "medsynth_site.context_processors.site",
            ],
        },
    },
]

# How long a worker process keeps a chapter's in-context example candidates (generation.examples).
EXAMPLE_CANDIDATES_CACHE_SECONDS = env_int("EXAMPLE_CANDIDATES_CACHE_SECONDS", 60)
# How long a worker process keeps the prompts' reference rows (quality variables, physician
# roles) and the models' prices (generation.caching).
REFERENCE_CACHE_SECONDS = env_int("REFERENCE_CACHE_SECONDS", 30)
# Whether a process keeps the agreement page's tally until a decision is recorded
# (review.selectors: counting every decision again takes most of the page's time).
AGREEMENT_TALLY_CACHE = env_bool("AGREEMENT_TALLY_CACHE", True)

# --- Database -------------------------------------------------------------------
# PostgreSQL when DATABASE_URL is set; otherwise SQLite tuned so the web process and
# a worker can write at once: WAL lets readers run beside the writer, IMMEDIATE takes
# the write lock at BEGIN (no lock upgrade that fails with "database is locked"), and
# the busy timeout makes a second writer wait instead of failing.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "medsynth.sqlite3"),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
            },
        }
    }
if DATABASE_URL and "postgresql" in DATABASES["default"]["ENGINE"]:
    _postgres_options: dict[str, object] = {
        # No JIT: it compiles any query whose estimate is high (a queue's count over thousands
        # of cases) and takes longer compiling than the query takes to run.
        "options": "-c jit=off",
    }
    # Parameters bound by the server, and a statement run twice on a connection prepared: the server
    # parses and plans the pipeline's few statement shapes once per connection (a third of its CPU
    # per step otherwise). Off behind a pooler in transaction mode (PgBouncer), which cannot keep
    # prepared statements.
    if env_bool("DATABASE_PREPARED_STATEMENTS", True):
        _postgres_options |= {"server_side_binding": True, "prepare_threshold": 2}
    DATABASES["default"]["OPTIONS"] = {**DATABASES["default"].get("OPTIONS", {}), **_postgres_options}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------
# django-axes' backend checks lockouts first (and, being a ModelBackend subclass, lets
# force_login sessions resolve); ModelBackend then checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins, counted over AXES_COOLOFF_MINUTES (medsynth_site/login_throttle.py): a
# username from one address, one address over any usernames, and the whole site each have
# a limit; reaching one locks out for AXES_COOLOFF_MINUTES after the last failure.
LOGIN_FAILURE_LIMIT_PER_ACCOUNT = env_int("AXES_FAILURE_LIMIT", 5)
LOGIN_FAILURE_LIMIT_PER_ADDRESS = env_int("LOGIN_FAILURE_LIMIT_PER_ADDRESS", 20)
LOGIN_FAILURE_LIMIT_SITE = env_int("LOGIN_FAILURE_LIMIT_SITE", 100)
AXES_FAILURE_LIMIT = "medsynth_site.login_throttle.failure_limit"
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Reverse proxies in front of the app that append to X-Forwarded-For (0: none, the header
# is ignored and the connection's address counts).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "medsynth_site.login_throttle.client_ip_address"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Security (TLS deployments turn these on; `check --deploy` stays quiet) ------
SECURE_SSL = env_bool("SECURE_SSL", default=not DEBUG)
SESSION_COOKIE_SECURE = SECURE_SSL
CSRF_COOKIE_SECURE = SECURE_SSL
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=SECURE_SSL)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if SECURE_SSL else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_SSL)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=SECURE_SSL)
if env_bool("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- i18n / static --------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns at start-up when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = DATA_DIR / "media"
EXPORT_DIR = DATA_DIR / "exports"
# The largest file anyone may upload: a dataset import, which is read as a stream (rows in
# chunks), so its size costs disk, not memory. Uploads go to a temporary file as they arrive,
# and one is refused as soon as it passes the limit, never after the whole body has been
# received (medsynth_site/uploads.py).
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 4 * 1024**3)
# Admin imports (ICD-10 codes, roles, code frequencies) read their file whole: a smaller limit.
ADMIN_IMPORT_MAX_BYTES = env_int("ADMIN_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
FILE_UPLOAD_HANDLERS = ["medsynth_site.uploads.BoundedUploadHandler"]
# The rest of a request (form fields, not files) is held in memory up to this size.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Review -----------------------------------------------------------------------
# Items one clinician may send back for regeneration per hour (each costs LLM calls);
# admins are exempt, since they can launch whole batches (review/services/limits.py).
REGENERATIONS_PER_HOUR = env_int("REGENERATIONS_PER_HOUR", 30)
# Near-duplicates: two notes (or dialogues) whose word 3-grams have at least this estimated
# Jaccard similarity. After a change, `manage.py near_duplicates --rebuild`.
NEAR_DUPLICATE_THRESHOLD = float(env_str("NEAR_DUPLICATE_THRESHOLD") or "0.8")
# Import: refuse rows whose code is not billable (or not in the current catalogue) instead of
# importing them with a warning.
IMPORT_REFUSE_UNBILLABLE_CODES = env_bool("IMPORT_REFUSE_UNBILLABLE_CODES", False)

# --- Celery ---------------------------------------------------------------------
# Redis when CELERY_BROKER_URL is set; otherwise kombu's filesystem transport in
# DATA_DIR, which needs no server and is consumed by a real worker process.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_BROKER_IS_FILESYSTEM = not CELERY_BROKER_URL
if CELERY_BROKER_IS_FILESYSTEM:
    _broker_dir = DATA_DIR / "broker"
    for sub in ("queue", "processed", "control"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # How often an idle worker looks for a message (kombu's default is 1 s): each pipeline step
        # waited about that long for its message (`make bench`); a listing of a small folder costs little.
        "polling_interval": 0.1,
    }
    # The filesystem transport has no fanout exchange for remote control.
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
# Pipeline state lives in the database, so task results are never stored.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Above the worst case of one LLM step: attempts x client timeout + retry waits + the wait
# for a free slot under the shared concurrency limit (see LLM_* below).
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 3600)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 3660)

# --- LLM ------------------------------------------------------------------------
# OPENAI_API_KEY (or LLM_BASE_URL) switches from the local demo model to a provider.
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_MODEL = env_str("LLM_MODEL", "gpt-4o-mini")
LLM_API_KEY_ENV = env_str("LLM_API_KEY_ENV", "OPENAI_API_KEY")
# Shell-style patterns an endpoint's key variable must match: its value is sent as a bearer
# token, so no endpoint may name DATABASE_URL or SECRET_KEY (those are refused whatever this says).
LLM_API_KEY_ENV_ALLOWED = env_list("LLM_API_KEY_ENV_ALLOWED", "*_API_KEY")
LLM_PROVIDER_CONFIGURED = bool(env_str("OPENAI_API_KEY") or LLM_BASE_URL)
# Whether the provider endpoint offers the Batch API (OpenAI's own URL does), set when it is
# first registered; the admin's tick decides afterwards.
LLM_SUPPORTS_BATCH_API = env_bool("LLM_SUPPORTS_BATCH_API", default=not LLM_BASE_URL)
LOCAL_LLM_HOST = env_str("LOCAL_LLM_HOST", "127.0.0.1")
LOCAL_LLM_PORT = env_int("LOCAL_LLM_PORT", 8081)
LOCAL_LLM_MODEL = LOCAL_MODEL_ALIAS
LLM_TIMEOUT_SECONDS = env_int("LLM_TIMEOUT_SECONDS", 120)
# One structured_completion retries transient errors at most this often and this long,
# and waits at most LLM_CAPACITY_MAX_WAIT_SECONDS for a free slot under the shared limits.
LLM_RETRY_MAX_ATTEMPTS = env_int("LLM_RETRY_MAX_ATTEMPTS", 5)
LLM_RETRY_MAX_WAIT_SECONDS = env_int("LLM_RETRY_MAX_WAIT_SECONDS", 120)
LLM_CAPACITY_MAX_WAIT_SECONDS = env_int("LLM_CAPACITY_MAX_WAIT_SECONDS", 900)

# --- Liveness of pipeline steps (generation.services.pipeline.leases, generation.services.recovery)
# A running step holds a lease that its worker's heartbeat renews every quarter lease; once a
# lease has run out (its worker died), a redelivered message or the recovery pass takes the step over.
PIPELINE_LEASE_SECONDS = env_int("PIPELINE_LEASE_SECONDS", 60)
# The longest one step may run: every attempt of its LLM call (the repair attempt too) at the
# client timeout, plus the retry waits and the wait for a free slot. No attempt starts that could
# end past it, and the heartbeat stops renewing a step past it, so a hung step becomes
# recoverable: unlike Celery's time limits, this holds in the thread pool too.
PIPELINE_STEP_TIME_LIMIT = env_int(
    "PIPELINE_STEP_TIME_LIMIT",
    (LLM_RETRY_MAX_ATTEMPTS + 1) * LLM_TIMEOUT_SECONDS + LLM_RETRY_MAX_WAIT_SECONDS + LLM_CAPACITY_MAX_WAIT_SECONDS,
)
# How often Celery beat runs the recovery pass, and how long a PENDING step waits before it
# counts as never sent, or as lost when the generation queue is empty.
PIPELINE_RECOVERY_INTERVAL_SECONDS = env_int("PIPELINE_RECOVERY_INTERVAL_SECONDS", 60)
PIPELINE_RECOVERY_GRACE_SECONDS = env_int("PIPELINE_RECOVERY_GRACE_SECONDS", 60)
# --- Provider Batch API mode (generation.services.pipeline.provider_batches) ---------------
# An agent's waiting steps go out as one provider batch once this many wait, or once the
# oldest has waited this long (a batch's config may set its own: batch_flush_lines/_seconds).
PROVIDER_BATCH_FLUSH_LINES = env_int("PROVIDER_BATCH_FLUSH_LINES", 100)
PROVIDER_BATCH_FLUSH_SECONDS = env_int("PROVIDER_BATCH_FLUSH_SECONDS", 300)
# How often Celery beat submits, polls and collects provider batches.
PROVIDER_BATCH_POLL_SECONDS = env_int("PROVIDER_BATCH_POLL_SECONDS", 60)
# Lines per input file (OpenAI takes up to 50,000), and the completion window asked for.
PROVIDER_BATCH_MAX_LINES = env_int("PROVIDER_BATCH_MAX_LINES", 5_000)
PROVIDER_BATCH_COMPLETION_WINDOW = env_str("PROVIDER_BATCH_COMPLETION_WINDOW", "24h")
# A step whose line failed or expired this many times fails (its case can be retried).
PROVIDER_BATCH_LINE_ATTEMPTS = env_int("PROVIDER_BATCH_LINE_ATTEMPTS", 3)
# How long one pass holds a provider batch it sends or polls before another pass may take it.
PROVIDER_BATCH_LEASE_SECONDS = env_int("PROVIDER_BATCH_LEASE_SECONDS", 600)
CELERY_BEAT_SCHEDULE = {
    "recover-pipeline-steps": {
        "task": "generation.tasks.recover_steps",
        "schedule": float(PIPELINE_RECOVERY_INTERVAL_SECONDS),
        # A pass that waited longer than the interval (no worker was up) is dropped, not piled up.
        "options": {"expires": float(PIPELINE_RECOVERY_INTERVAL_SECONDS)},
    },
    "provider-batches": {
        "task": "generation.tasks.provider_batches_tick",
        "schedule": float(PROVIDER_BATCH_POLL_SECONDS),
        "options": {"expires": float(PROVIDER_BATCH_POLL_SECONDS)},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
if not CELERY_BROKER_IS_FILESYSTEM:
    # Redis hands an unacknowledged message to another worker after the visibility timeout: keep
    # it above the longest a step can hold its message (its time limit, then its lease running
    # out), so no step still running gets a second copy (the claim would drop it anyway).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int(
            "CELERY_VISIBILITY_TIMEOUT", 2 * (PIPELINE_STEP_TIME_LIMIT + PIPELINE_LEASE_SECONDS)
        )
    }

# --- Logging --------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# --- django-import-export ---------------------------------------------------------
# Admin exports: CSV/TSV cells that look like formulas are neutralised (medsynth_site.csv_cells).
from import_export.formats.base_formats import JSON  # noqa: E402 - settings-only imports, kept beside their use

from medsynth_site.csv_cells import SafeCSV, SafeTSV  # noqa: E402

EXPORT_FORMATS = [SafeCSV, SafeTSV, JSON]
