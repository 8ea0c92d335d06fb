"""BlobForge settings: every value comes from the environment, with safe defaults.

The embedded default (no variables set) is SQLite in WAL mode plus local-disk storage
under ``BLOBFORGE_DATA_DIR``. Setting ``DATABASE_URL``, ``BLOBFORGE_S3_*`` or
``BLOBFORGE_REDIS_URL`` moves the same code onto PostgreSQL, S3 and Redis.
A missing or contradictory setting stops start-up with a message naming the variable.
"""

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = env(name)
    if not raw:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = env(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_list(name: str) -> list[str]:
    return [item.strip() for item in env(name).split(",") if item.strip()]


DEBUG = env_bool("BLOBFORGE_DEBUG", False)
DATA_DIR = Path(env("BLOBFORGE_DATA_DIR", str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """Use BLOBFORGE_SECRET_KEY, else a random key kept in the data dir (created once, 0600)."""
    configured = env("BLOBFORGE_SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise ImproperlyConfigured("BLOBFORGE_SECRET_KEY must be at least 32 characters")
        return configured
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

PUBLIC_URL = env("BLOBFORGE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
_public = urlparse(PUBLIC_URL)
if _public.scheme not in ("http", "https") or not _public.hostname:
    raise ImproperlyConfigured("BLOBFORGE_PUBLIC_URL must be an http(s) URL such as https://blobforge.example.com")
SECURE_COOKIES = _public.scheme == "https"
ALLOWED_HOSTS = env_list("BLOBFORGE_ALLOWED_HOSTS") or [_public.hostname, "127.0.0.1", "localhost", "[::1]"]
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("BLOBFORGE_SESSION_SECONDS", 8 * 3600, minimum=60)
if SECURE_COOKIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "live.apps.ConsoleAdminConfig",  # django.contrib.admin with the role-based site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "channels",
    "ninja",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "accounts",
    "workers",
    "jobs",
    "live",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "blobforge_site.urls"
ASGI_APPLICATION = "blobforge_site.asgi.application"

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


# --- Database -------------------------------------------------------------------------
def _database() -> dict:
    url = env("DATABASE_URL")
    if not url:
        return {
            "ENGINE": "blobforge_site.sqlite_pool",
            "NAME": DATA_DIR / "blobforge.sqlite3",
            "OPTIONS": {
                # WAL lets readers run beside the one writer; IMMEDIATE takes the write
                # lock at BEGIN so two claims never deadlock upgrading a read lock.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ImproperlyConfigured("DATABASE_URL must be a postgresql:// URL (SQLite needs no URL)")
    # Under ASGI each sync_to_async thread would keep its own persistent connection and
    # nothing closes it (Django's docs: disable persistent connections under ASGI), so
    # connections are not persistent; psycopg's pool reuses them instead, bounded per process.
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.path.lstrip("/") or "postgres",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "pool": {"min_size": 1, "max_size": env_int("BLOBFORGE_DB_POOL_SIZE", 10, minimum=1), "timeout": 30}
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Storage --------------------------------------------------------------------------
S3_ENDPOINT = env("BLOBFORGE_S3_ENDPOINT")
S3_BUCKET = env("BLOBFORGE_S3_BUCKET")
S3_REGION = env("BLOBFORGE_S3_REGION", "us-east-1")
S3_ACCESS_KEY = env("BLOBFORGE_S3_ACCESS_KEY")
S3_SECRET_KEY = env("BLOBFORGE_S3_SECRET_KEY")
STORAGE_PREFIX = env("BLOBFORGE_S3_PREFIX").strip("/")
STORAGE_BACKEND = env("BLOBFORGE_STORAGE") or ("s3" if (S3_ENDPOINT or S3_BUCKET) else "local")
if STORAGE_BACKEND not in ("local", "s3"):
    raise ImproperlyConfigured(f"BLOBFORGE_STORAGE must be 'local' or 's3', not {STORAGE_BACKEND!r}")
if STORAGE_BACKEND == "s3" and not S3_BUCKET:
    raise ImproperlyConfigured("BLOBFORGE_S3_BUCKET is required when BLOBFORGE_STORAGE is s3")
if STORAGE_BACKEND == "s3" and bool(S3_ACCESS_KEY) != bool(S3_SECRET_KEY):
    raise ImproperlyConfigured("BLOBFORGE_S3_ACCESS_KEY and BLOBFORGE_S3_SECRET_KEY must be set together")
LOCAL_STORAGE_DIR = DATA_DIR / "storage"
SOURCE_URL_SECONDS = env_int("BLOBFORGE_SOURCE_URL_SECONDS", 3600, minimum=10)
MAX_UPLOAD_BYTES = env_int("BLOBFORGE_MAX_UPLOAD_BYTES", 2 * 1024**3, minimum=1024)
# Largest JSON body the APIs accept; upload bodies go to storage URLs, not here.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# --- Queue ----------------------------------------------------------------------------
JOB_TYPES = env_list("BLOBFORGE_JOB_TYPES") or ["pdf"]
MAX_ATTEMPTS = env_int("BLOBFORGE_MAX_ATTEMPTS", 3, minimum=1)
LEASE_SECONDS = env_int("BLOBFORGE_LEASE_SECONDS", 60, minimum=2)
HEARTBEAT_SECONDS = env_int("BLOBFORGE_HEARTBEAT_SECONDS", 15, minimum=1)
if HEARTBEAT_SECONDS * 2 > LEASE_SECONDS:
    raise ImproperlyConfigured("BLOBFORGE_HEARTBEAT_SECONDS must be at most half of BLOBFORGE_LEASE_SECONDS")
RETRY_BASE_SECONDS = env_int("BLOBFORGE_RETRY_BASE_SECONDS", 30, minimum=0)
RETRY_MAX_SECONDS = env_int("BLOBFORGE_RETRY_MAX_SECONDS", 3600, minimum=0)
AGING_SECONDS = env_int("BLOBFORGE_AGING_SECONDS", 6 * 3600, minimum=1)
CLAIM_WAIT_MAX_SECONDS = env_int("BLOBFORGE_CLAIM_WAIT_MAX_SECONDS", 20, minimum=0)
WORKER_OFFLINE_SECONDS = env_int("BLOBFORGE_WORKER_OFFLINE_SECONDS", 90, minimum=5)
EVENT_RETENTION_DAYS = env_int("BLOBFORGE_EVENT_RETENTION_DAYS", 90, minimum=1)

# --- Live updates ---------------------------------------------------------------------
REDIS_URL = env("BLOBFORGE_REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # socket_timeout above the layer's 5 s blocking BZPOPMIN: redis-py 8 defaults it to 5 s,
            # which tears every websocket down (django/channels_redis#422). A prefix of its own
            # lets several BlobForge deployments (or test runs) share one Redis.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": env("BLOBFORGE_REDIS_PREFIX", "blobforge"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Identity -------------------------------------------------------------------------
# One backend: allauth's, refusing passwords when BLOBFORGE_LOCAL_LOGIN is off (admin form included).
AUTHENTICATION_BACKENDS = ["accounts.backends.AuthenticationBackend"]
OIDC_ISSUER = env("BLOBFORGE_OIDC_ISSUER").rstrip("/")
OIDC_CLIENT_ID = env("BLOBFORGE_OIDC_CLIENT_ID")
OIDC_CLIENT_SECRET = env("BLOBFORGE_OIDC_CLIENT_SECRET")
OIDC_PROVIDER_ID = env("BLOBFORGE_OIDC_PROVIDER_ID", "oidc")
OIDC_DISPLAY_NAME = env("BLOBFORGE_OIDC_NAME", "Single sign-on")
OIDC_SCOPES = env_list("BLOBFORGE_OIDC_SCOPES") or ["openid", "profile", "email"]
OIDC_GROUPS_CLAIM = env("BLOBFORGE_OIDC_GROUPS_CLAIM", "groups")
OIDC_ALLOWED_GROUPS = env_list("BLOBFORGE_OIDC_ALLOWED_GROUPS")
OIDC_OPERATOR_GROUPS = env_list("BLOBFORGE_OIDC_OPERATOR_GROUPS")
OIDC_ADMIN_GROUPS = env_list("BLOBFORGE_OIDC_ADMIN_GROUPS")
if OIDC_ISSUER and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET):
    raise ImproperlyConfigured(
        "BLOBFORGE_OIDC_CLIENT_ID and BLOBFORGE_OIDC_CLIENT_SECRET are required with BLOBFORGE_OIDC_ISSUER"
    )
LOCAL_LOGIN = env_bool("BLOBFORGE_LOCAL_LOGIN", not OIDC_ISSUER)
# Local login off: allauth's password form refuses POSTs and its password/sign-up pages are gone.
SOCIALACCOUNT_ONLY = not LOCAL_LOGIN

SOCIALACCOUNT_PROVIDERS = {}
if OIDC_ISSUER:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        # accounts.oidc.OIDCProvider is allauth's provider plus a nonce on every sign-in.
        "provider_class": "accounts.oidc.OIDCProvider",
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": OIDC_PROVIDER_ID,
                "name": OIDC_DISPLAY_NAME,
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                "settings": {"server_url": OIDC_ISSUER, "scope": OIDC_SCOPES},
            }
        ],
    }
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
# allauth counts these in Django's cache; "api_token" is token creation at /accounts/tokens/.
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key", "login": "30/m/ip", "api_token": "10/m/user,50/d/user"}
# Every session lasts BLOBFORGE_SESSION_SECONDS from sign-in (no "remember me" choice).
ACCOUNT_SESSION_REMEMBER = True
# Callback URLs use the public scheme even when TLS ends at a proxy.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = _public.scheme
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "/accounts/login/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- Metrics --------------------------------------------------------------------------
METRICS_TOKEN = env("BLOBFORGE_METRICS_TOKEN")
# Without a token /metrics answers 404, unless it is explicitly left open (e.g. behind a
# private bind that only Prometheus reaches).
METRICS_OPEN = env_bool("BLOBFORGE_METRICS_OPEN", False)

# --- Durability (manage.py serve) -----------------------------------------------------
# Litestream replicates the SQLite database to the S3 bucket under <prefix>/litestream/;
# it is used only with SQLite and S3 storage, and can be switched off.
LITESTREAM = env_bool("BLOBFORGE_LITESTREAM", True)
LITESTREAM_SYNC_INTERVAL = env("BLOBFORGE_LITESTREAM_SYNC_INTERVAL", "1s")

# --- Static files, i18n, logging ------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("BLOBFORGE_LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.request": {"level": "ERROR"}, "daphne": {"level": "WARNING"}},
}
