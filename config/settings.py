"""Canopy settings: one file, configured from the environment (12-factor).

Every variable is documented in README.md. Production secrets have no silent default: with DEBUG off,
a missing SECRET_KEY stops the process at start-up.
"""

import re
import sys
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"  # git-ignored: the default SQLite database lives here

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see README.md).")
    SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"

# Secrets at rest (credentials, secret environment variables): Fernet keys, newest first (resources/crypto.py).
# Rotate: put a new key first, run `manage.py rotate_encryption_keys`, then drop the old one.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
if not FIELD_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be set when DEBUG is off (see README.md).")
    # Development only: a key derived from the development SECRET_KEY, stable across restarts.
    import base64
    import hashlib

    _derived = hashlib.sha256(f"fernet:{SECRET_KEY}".encode()).digest()
    FIELD_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(_derived).decode()]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "config.api.csrf_failure"  # JSON under /api/, Django's page elsewhere

SIGNUP_ENABLED = env.bool("SIGNUP_ENABLED", default=True)
# The public address of the console, for links in e-mails (invitations).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")
# Single sign-on: may a tenant's identity provider live on a private or loopback address? Issuer URLs are typed by
# tenant administrators, so by default Canopy refuses to fetch them there (SSRF) and requires https; a self-hosted
# IdP on the same network (or the tests' IdP on loopback) needs it on.
SSO_ALLOW_PRIVATE_NETWORK = env.bool("SSO_ALLOW_PRIVATE_NETWORK", default=DEBUG)
# How long a soft-deleted organization can be restored before purge_deleted_orgs removes it.
ORG_RESTORE_WINDOW = timedelta(days=env.int("ORG_RESTORE_WINDOW_DAYS", default=30))
# Lifetime of personal access tokens issued by POST /api/v1/auth/token.
API_TOKEN_LIFETIME = timedelta(days=env.int("API_TOKEN_LIFETIME_DAYS", default=30))

# Runtimes and the run queue (runtimes/; README "Runtimes"). Seconds unless said otherwise.
RUNTIME_HEARTBEAT_S = env.int("RUNTIME_HEARTBEAT_S", default=10)  # how often an agent heartbeats
RUNTIME_LEASE_S = env.int("RUNTIME_LEASE_S", default=30)  # a claim's lease; renewed by heartbeats and log batches
RUNTIME_OFFLINE_AFTER_S = env.int("RUNTIME_OFFLINE_AFTER_S", default=3 * RUNTIME_HEARTBEAT_S)  # 3 missed beats
RUNTIME_NO_RUNTIME_TIMEOUT_S = env.int("RUNTIME_NO_RUNTIME_TIMEOUT_S", default=3600)  # queued, runtime offline
RUNTIME_REAPER_INTERVAL_S = env.int("RUNTIME_REAPER_INTERVAL_S", default=10)  # opportunistic sweeps, at most
RUNTIME_ENROLLMENT_TOKEN_S = env.int("RUNTIME_ENROLLMENT_TOKEN_S", default=3600)  # one-time enrollment tokens
RUNTIME_AGENT_TOKEN_DAYS = env.int("RUNTIME_AGENT_TOKEN_DAYS", default=30)  # agents rotate before expiry
RUNTIME_TOKEN_ROTATION_GRACE_S = env.int("RUNTIME_TOKEN_ROTATION_GRACE_S", default=60)  # the old token after rotate
RUNTIME_CLAIM_MAX_WAIT_S = env.int("RUNTIME_CLAIM_MAX_WAIT_S", default=30)  # a claim's long poll, at most
RUNTIME_LOG_BATCH_MAX = env.int("RUNTIME_LOG_BATCH_MAX", default=500)  # log lines per batch, at most

# The roll-up's read model (governance/rollup/snapshots.py): the longest a snapshot serves, how often the
# refresher computes the ones read lately, how long a snapshot nobody reads is kept.
ROLLUP_SNAPSHOT_MAX_AGE_S = env.int("ROLLUP_SNAPSHOT_MAX_AGE_S", default=300)
ROLLUP_REFRESH_S = env.int("ROLLUP_REFRESH_S", default=60)
ROLLUP_WATCH_S = env.int("ROLLUP_WATCH_S", default=86400)

# Workload identity (workload/; README "Workload identity"): Canopy as an OpenID Connect issuer of tokens for runs.
# The issuer is the configured address, never the request's Host (a spoofed Host would otherwise name the issuer).
WORKLOAD_IDENTITY_ISSUER = env.str("WORKLOAD_IDENTITY_ISSUER", default=SITE_URL).rstrip("/")
WORKLOAD_IDENTITY_ALG = env.str("WORKLOAD_IDENTITY_ALG", default="RS256")  # of keys made from now on: RS256 or ES256
WORKLOAD_IDENTITY_TTL_S = env.int("WORKLOAD_IDENTITY_TTL_S", default=300)  # a token's lifetime: 60..900 s
WORKLOAD_IDENTITY_TOKENS_PER_RUN = env.int("WORKLOAD_IDENTITY_TOKENS_PER_RUN", default=60)  # at most, per run
WORKLOAD_IDENTITY_KEY_LEEWAY_S = env.int("WORKLOAD_IDENTITY_KEY_LEEWAY_S", default=300)  # retired key kept past exp
if WORKLOAD_IDENTITY_ALG not in ("RS256", "ES256"):
    raise ImproperlyConfigured("WORKLOAD_IDENTITY_ALG must be RS256 or ES256.")
if not 60 <= WORKLOAD_IDENTITY_TTL_S <= 900:
    raise ImproperlyConfigured("WORKLOAD_IDENTITY_TTL_S must be from 60 to 900 seconds (15 minutes at most).")
if WORKLOAD_IDENTITY_TOKENS_PER_RUN < 1 or WORKLOAD_IDENTITY_KEY_LEEWAY_S < 0:
    raise ImproperlyConfigured(
        "WORKLOAD_IDENTITY_TOKENS_PER_RUN must be 1 or more and WORKLOAD_IDENTITY_KEY_LEEWAY_S 0 or more."
    )

INSTALLED_APPS = [
    "config.apps.CanopyAdminConfig",  # django.contrib.admin, with Canopy's site (config/admin.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "mptt",
    "guardian",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "access",
    "orgs",
    "resources",
    "runtimes",
    "identity",  # single sign-on per tenant (OIDC), e-mail domains, break-glass codes, sign-in discovery
    "twofactor",  # TOTP and backup codes (django-otp), the require_2fa setting's enforcement
    "workload",  # Canopy as an OIDC issuer: workload identity tokens for runs, signing keys, JWKS
    "governance",  # roll-up dashboards, impact previews of structural changes, access reviews (#12)
    "idempotency",  # Idempotency-Key on the API's creates and runs: a retry gets the first answer (24 h)
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
]
# Development tools (manage.py benchmark, seed_scale: devtools/apps.py) are no part of production: installed with
# DEBUG, under the test runner (pytest imports before the settings), or with DEVTOOLS=True (the load test's
# preparation runs with DEBUG off). Production does not import them, nor needs their dev requirements.
DEVTOOLS = env.bool("DEVTOOLS", default=DEBUG or "pytest" in sys.modules)
if DEVTOOLS:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    # First: every answer carries X-Request-Id (the refusals of the middleware below included), and every log line
    # written while serving the request names it.
    "config.request_id.RequestIdMiddleware",
    # The API's RateLimit-* headers (the throttles note the quota) and a deprecated operation's Deprecation, Sunset
    # and Link headers (before the idempotency middleware: a replayed answer carries them too).
    "config.ratelimit.RateLimitHeadersMiddleware",
    "config.deprecation.DeprecationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before whitenoise, so that static files carry the policy too (an SVG opened on its own is a document).
    "csp.middleware.CSPMiddleware",
    "config.security.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before the session: a NUL in a cookie, the path, a parameter or a form field never reaches the database.
    "config.hostile.HostileInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Under DEBUG, the console's own 404 page rather than Django's technical one (config/notfound.py).
    "config.notfound.OwnNotFoundMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "access.middleware.RequestContextMiddleware",
    # How the session authenticated (password, SSO, second factor): the policy's fences read it (access/fences.py).
    "access.fences.AuthContextMiddleware",
    "axes.middleware.AxesMiddleware",
    # Idempotency-Key (idempotency/middleware.py): after the session and authentication, so it knows the user.
    "idempotency.middleware.IdempotencyMiddleware",
    # Who was active when (the access review's "last seen"): after the view, outside the read-only snapshot below,
    # at most one write per user every few minutes (access/last_seen.py).
    "access.last_seen.LastSeenMiddleware",
    # Last: a safe request's view reads from one snapshot (the session is saved outside it).
    "config.snapshots.ReadSnapshotMiddleware",
]
if "pytest" in sys.modules:
    # Under the test suite: every API error code answered is one the schema's ErrorCode enum lists.
    MIDDLEWARE.insert(0, "config.error_codes.UndeclaredErrorCode")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "access.context_processors.account",
                "config.console.undo_offer",
            ],
        },
    },
]

# The policy (access.policy) reads guardian's direct-FK grant tables itself; Django's object-permission backend
# would be a second, unused decision path, so it is deliberately not installed.
SILENCED_SYSTEM_CHECKS = ["guardian.W001"]
# More, comma-separated, from the environment: e.g. canopy.W001 where the PostgreSQL is a throwaway test server that
# runs without autovacuum on purpose (CI); never in production.
SILENCED_SYSTEM_CHECKS += env.list("SILENCED_SYSTEM_CHECKS", default=[])

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for the write lock instead of failing at once when two requests write together.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
    # org_tree_range INCLUDEs rght on PostgreSQL only; SQLite builds the same index without it, as intended.
    SILENCED_SYSTEM_CHECKS.append("models.W040")
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # PostgreSQL's default random_page_cost (4) models spinning disks: with it the planner scanned all 110k
    # projects for a visible() page instead of probing the org_id index (13 ms instead of 1.4 ms). 1.1 is the
    # usual value for SSDs and RAM-resident data; set DB_RANDOM_PAGE_COST empty to keep the server's own.
    if page_cost := env.str("DB_RANDOM_PAGE_COST", default="1.1"):
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c random_page_cost={float(page_cost)}"

# How long a tree or declaration write waits for its tenant's lock before answering 503 with Retry-After
# (orgs/locks.py): a queue of writers behind a long move must not tie up every worker.
TENANT_LOCK_TIMEOUT_MS = env.int("TENANT_LOCK_TIMEOUT_MS", default=3000)

# The policy's statements are prepared once per PostgreSQL connection (access/resolver.py). Turn off behind a
# transaction-pooling PgBouncer older than 1.21, which cannot keep prepared statements.
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)

# Throttle counters live in the cache, so production needs one cache shared by every worker (Redis): a per-process
# cache gives each worker its own count (system check canopy.E002 under --deploy). Lock-outs are not in the cache:
# django-axes keeps them in the database.
_cache_url = env.str("CACHE_URL", default="locmemcache://canopy")
if _cache_url.split("://", 1)[0] in ("redis", "rediss", "rediscache", "valkey", "valkeys"):
    # Parsed as Django's own Redis backend (django-environ would pick django-redis if it were ever installed, with
    # upper-cased options), then run through config.cache: the same backend, failing open when Redis is unavailable.
    CACHES = {"default": env.cache_url_config(_cache_url, backend="django.core.cache.backends.redis.RedisCache")}
    CACHES["default"]["BACKEND"] = "config.cache.FailOpenRedisCache"
    _cache_options = CACHES["default"].setdefault("OPTIONS", {})
    # Short timeouts: a cache that accepts connections but never answers must not hold a worker.
    _cache_options.setdefault("socket_connect_timeout", env.float("CACHE_CONNECT_TIMEOUT", default=0.5))
    _cache_options.setdefault("socket_timeout", env.float("CACHE_READ_TIMEOUT", default=0.5))
else:
    CACHES = {"default": env.cache_url_config(_cache_url)}

EMAIL_CONFIG = env.email("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Canopy <noreply@canopy.localhost>")

AUTH_USER_MODEL = "access.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out credentials before checking them
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Brute-force protection: lock a username+IP pair out after repeated failures.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "access.lockout.lockout_response"
# Usernames are unique whatever their case and log in in any case: count failures per lower-cased username, or
# "Alice", "ALICE", … would each get their own five attempts.
AXES_USERNAME_CALLABLE = "access.lockout.username_of"
# Lock-outs in the database (axes' default, stated): they survive a cache outage and are shared by every worker.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"

# Guardian: object permissions live in the direct-FK tables declared in access.models.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the switcher's and forms' JS never reads it, but DRF's browsable tools may
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# No inline script or style anywhere: the console, the admin and the Swagger UI load their code and styles from
# files. The one relaxation is on /api/v1/docs/ only (config/api_urls.py): img-src data:, for the icons that
# Swagger UI's own stylesheet embeds as data: URLs.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
# Browser features no page of Canopy uses, denied to it and to anything it could ever embed (config/security.py).
PERMISSIONS_POLICY = [
    "accelerometer",
    "autoplay",
    "camera",
    "display-capture",
    "encrypted-media",
    "geolocation",
    "gyroscope",
    "hid",
    "idle-detection",
    "magnetometer",
    "microphone",
    "midi",
    "payment",
    "screen-wake-lock",
    "serial",
    "usb",
    "xr-spatial-tracking",
]
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The API's general rate limits (config/ratelimit.py): requests per signed-in user, and per address for anonymous
# callers, in DRF's notation (count/second|minute|hour|day). Under the test suite the defaults are out of reach: the
# tests of the limits set their own.
_UNREACHABLE = "pytest" in sys.modules
THROTTLE_USER = env.str("THROTTLE_USER", default="1000000/hour" if _UNREACHABLE else "5000/hour")
THROTTLE_ANON = env.str("THROTTLE_ANON", default="1000000/hour" if _UNREACHABLE else "1000/hour")
for _name, _rate in (("THROTTLE_USER", THROTTLE_USER), ("THROTTLE_ANON", THROTTLE_ANON)):
    if not re.fullmatch(r"[1-9][0-9]*/(s|sec|second|m|min|minute|h|hour|d|day)", _rate):
        raise ImproperlyConfigured(f"{_name} must be a rate such as 5000/hour (a count, then s, min, hour or day).")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so that an anonymous request is answered 401 with a WWW-Authenticate header.
        "access.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies only (a view that receives a file declares multipart itself: the lookup-table CSV import), with
    # DRF's parser refusing NUL and lone surrogates (400 invalid_characters): config/hostile.py. One content type per
    # operation is what generated clients can call (form and multipart cannot carry nested steps, secrets or rows).
    "DEFAULT_PARSER_CLASSES": ["config.hostile.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",  # documents the error answers of every operation
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Every API view a person calls counts against a general limit (config/ratelimit.py: per user, or per address
    # for anonymous callers), answered with RateLimit-* headers; a view with a stricter scope (below) has its own.
    "DEFAULT_THROTTLE_CLASSES": ["config.ratelimit.UserRateThrottle", "config.ratelimit.AnonRateThrottle"],
    # A throttle's client address is REMOTE_ADDR, which the proxy in front sets (README, Deploying): never the
    # X-Forwarded-For a client can write itself (DRF's default trusts it, so a scoped limit could be dodged).
    "NUM_PROXIES": 0,
    "DEFAULT_THROTTLE_RATES": {
        "user": THROTTLE_USER,
        "anon": THROTTLE_ANON,
        "auth": env.str("THROTTLE_AUTH", default="20/min"),
        "signup": env.str("THROTTLE_SIGNUP", default="10/hour"),
        # Password reset and e-mail verification requests: each may send an e-mail.
        "email": env.str("THROTTLE_EMAIL", default="10/hour"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Canopy API",
    "DESCRIPTION": "The organization layer: tenants, organizations, projects, members and shared resources.",
    "VERSION": "1.0.0",
    # OpenAPI 3.1 (JSON Schema): a nullable reference is oneOf [ref, null], which generators and linters read alike.
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PATH_CONVERTER_OVERRIDES": {"id": {"type": "string", "format": "uuid"}},  # config/converters.py
    "SERVERS": [{"url": SITE_URL, "description": "This installation (SITE_URL)"}],
    "LICENSE": {
        "name": "Proprietary: the API may be used by Canopy's customers to integrate with their tenants.",
        "identifier": "LicenseRef-Canopy-Proprietary",  # SPDX's form for a licence of one's own
    },
    "CONTACT": {"name": "Canopy", "url": SITE_URL},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.schema.document_security",
        "config.schema.add_named_types",
        # X-Request-Id on every answer, Retry-After and RateLimit-* on 429: the headers integrators rely on.
        "config.schema.document_headers",
    ],
    # Choice sets whose field names other sets share ("kind", "source", "status"): one enum name each.
    "ENUM_NAME_OVERRIDES": {
        "ErrorCode": "config.error_codes.ERROR_CODE_CHOICES",
        # -- access, orgs (issue #15: enums named for what they are, without an "Enum" suffix)
        "AccessInheritance": "orgs.models.Organization.AccessInheritance",
        "Capability": "access.roles.CAPABILITIES",
        "GrantSource": "access.api_members.GRANT_SOURCES",
        "InvitationStatus": "access.api_members.INVITATION_STATUSES",
        "TenantPlan": "orgs.models.Tenant.Plan",
        # -- resources
        "CredentialKind": "resources.models.Credential.Kind",
        "CredentialSource": "resources.models.Credential.Source",
        "RunStatus": "resources.models.Run.Status",
        "HiddenKind": "resources.api.hide_choices",
        "HttpMethod": "resources.services.tasks.HTTP_METHODS",
        "LogLevel": "resources.models.RunLogLine.Level",
        "ShareLevel": "resources.services.tasks.SHARE_PERMISSIONS",
        "HttpStepType": ["http"],
        "LookupStepType": ["lookup"],
        "TransformStepType": ["transform"],
        "LogStepType": ["log"],
        "SettingType": "resources.api.SETTING_TYPES",
        "SettingSource": ["default", "here", "inherited"],
        "LookupImportMode": ["replace", "merge"],
        # -- runtimes, identity, twofactor, workload
        "RuntimeKind": "runtimes.models.Runtime.Kind",
        "RuntimeSource": ["here", "inherited", "platform"],
        "RuntimeStatus": "runtimes.models.Runtime.Status",
        "ClaimedRunStatus": "runtimes.agent_api.CLAIMED_STATUSES",
        "FinishStatus": "runtimes.queue.FINISH_STATUSES",
        "StepStatus": "runtimes.queue.STEP_STATUSES",
        "SsoProtocol": "identity.models.TenantSSO.Protocol",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # No token or secret in any log line (config/redaction.py), Django's request and runserver logs included.
    # Every record knows the request it was written for (record.request_id; X-Request-Id), and a line written while
    # serving a request ends with request_id=<id> (config/request_id.py).
    "filters": {
        "redact": {"()": "config.redaction.RedactSecrets"},
        "request_id": {"()": "config.request_id.RequestIdFilter"},
    },
    "formatters": {
        "console": {"()": "config.request_id.RequestIdFormatter"},
        "server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact", "request_id"], "formatter": "console"},
        "server": {"class": "logging.StreamHandler", "filters": ["redact", "request_id"], "formatter": "server"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "axes": {"level": "WARNING"},
        # Replaces Django's default handlers of these loggers (unfiltered, and printing twice under DEBUG).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
    },
}
