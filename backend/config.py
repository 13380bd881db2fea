"""The one place configuration is read: environment variables (and an optional .env file).

Every outside service is chosen by one variable; unset means the embedded default, so
`make run` needs no servers at all.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_PLACEHOLDER = "dev-only-insecure-secret-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = PROJECT_ROOT / "data"
    secret_key: SecretStr = SecretStr(DEV_SECRET_PLACEHOLDER)

    # --- data stores -------------------------------------------------------------------
    # Owner connection: runs migrations. Unset = SQLite file under data_dir.
    database_url: str | None = None
    # Runtime connection, as a login role that owns nothing (required in production; the app refuses to
    # start as a superuser or the tables' owner). Unset in development/test = the owner connection followed
    # by `SET ROLE <database_app_role>` (RLS applies to the app's queries, but RESET ROLE could undo it).
    database_app_url: str | None = None
    database_app_role: str = "marketplace_app"
    redis_url: str | None = None  # Celery broker/results, chat presence; unset = in-process
    mongodb_url: str | None = None  # chat history; unset = an nx-27017 server in-process on data_dir/chat
    # Search (professionals, open requests): unset = the embedded tantivy index under data_dir/search
    elasticsearch_url: str | None = None
    # Object storage: unset = files under data_dir/objects. S3_ENDPOINT_URL for MinIO and other S3 servers.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_presign_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    # Lifetime of a signed URL to a private object (invoice, chat attachment, request photo), minted after the
    # caller's right to it was checked; a page re-mints them on every load.
    signed_url_seconds: int = Field(default=600, ge=30, le=24 * 3600)

    # --- payments: a provider exists when its keys are set. None set = no marketplace can take payments,
    # except with ENVIRONMENT=development, which has the demo gateway (test cards, no money moves) ------
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None  # only to point the SDK at a local fake in tests
    paypal_client_id: str | None = None
    paypal_client_secret: SecretStr | None = None
    paypal_webhook_id: str | None = None
    paypal_environment: Literal["sandbox", "production"] = "sandbox"
    paypal_api_base: str | None = None  # only to point the SDK at a local fake in tests

    # --- notifications: a channel's provider exists when its keys are set. Unset: with ENVIRONMENT=development
    # the dev outboxes (email in a Maildir under data_dir/outbox, SMS in data_dir/sms-outbox); elsewhere the
    # deliveries wait (and say why) until a provider is configured ------------------------------------------
    sendgrid_api_key: SecretStr | None = None
    # The Event Webhook's verification key (SendGrid: Settings > Mail Settings > Event Webhook > Signed Event
    # Webhook, the base64 public key): status events without a valid signature are refused.
    sendgrid_webhook_public_key: str | None = None
    sendgrid_api_host: str | None = None  # only to point the SDK at a local fake in tests
    email_from: str = "no-reply@marketplace.localhost"  # the sender address; the From name is the marketplace's
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None  # also verifies Twilio's status callbacks (X-Twilio-Signature)
    twilio_from_number: str | None = None  # an E.164 sender, or:
    twilio_messaging_service_sid: str | None = None
    twilio_api_base: str | None = None  # only to point the SDK at a local fake in tests
    # Web push (VAPID, RFC 8292): the key pair browsers subscribe with and our pushes are signed with, base64url (the
    # raw 32-byte private key and the 65-byte uncompressed public key, as `npx web-push generate-vapid-keys` prints
    # them). Unset: no push channel, except with ENVIRONMENT=development, which makes a pair and keeps it in
    # data_dir/dev-vapid.json. Changing the pair orphans every device (browsers must subscribe again).
    vapid_public_key: str | None = None
    vapid_private_key: SecretStr | None = None
    # Who the push services may contact about our pushes: mailto: or https:. Unset: mailto:<EMAIL_FROM>.
    vapid_subject: str | None = None

    # --- tenancy -----------------------------------------------------------------------
    base_domain: str = "localhost"  # <slug>.<base_domain> selects tenant <slug>
    default_tenant: str = "demo"  # served on the bare base domain / an IP address

    # --- accounts ----------------------------------------------------------------------
    session_days: int = Field(default=14, ge=1, le=365)
    reset_token_minutes: int = Field(default=60, ge=5, le=24 * 60)
    verify_token_hours: int = Field(default=48, ge=1, le=24 * 14)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)
    # Password-reset requests and verification re-sends (each mails someone): at most this many per account
    # (the email asked for, whether or not it has an account) and per network address within the window.
    email_requests_per_account: int = Field(default=3, ge=1)
    email_requests_per_address: int = Field(default=10, ge=1)
    email_requests_window_minutes: int = Field(default=60, ge=1)
    # A reset request takes at least this long whether or not the email has an account, so its
    # timing does not tell who is registered.
    reset_request_min_ms: int = Field(default=300, ge=0, le=5000)
    # argon2id cost: 64 MiB, 2 passes, 2 lanes = ~60 ms per hash on the 2-core reference machine,
    # inside the 100 ms budget for a login with headroom for load (bench/ measures it every run).
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8 * 1024)
    argon2_parallelism: int = Field(default=2, ge=1)

    # --- web ---------------------------------------------------------------------------
    public_url: str = "http://localhost:3000"  # used in links inside emails
    # How many trusted reverse proxies in front of the app write X-Forwarded-For (deploy/nginx.conf: 1). The client
    # address used for throttling and session records is the N-th entry from the right, never the leftmost;
    # 0 = the TCP peer, the header is ignored. One variable, read by Reflex itself and by the backend.
    trusted_proxy_hops: int = Field(default=0, ge=0, le=10,
                                    validation_alias=AliasChoices("REFLEX_TRUSTED_PROXY_HOPS", "trusted_proxy_hops"))
    max_avatar_bytes: int = 5 * 1024 * 1024  # every uploaded image (avatar, portfolio, request photo), per file
    # Request bodies, refused with 413 before they are read whole (marketplace_app/limits.py). An upload request
    # (Reflex's /_upload) may carry a whole form: the default fits the largest the app offers (12 portfolio
    # images of 5 MB, or 5 chat files of 10 MB) plus multipart overhead; the per-file limits still apply.
    # Everything else (REST API, payment webhooks, Reflex's long-polling fallback) is small.
    max_upload_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "marketplace.db"

    @property
    def owner_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.sqlite_path}"

    @property
    def is_postgres(self) -> bool:
        return self.owner_database_url.startswith("postgresql")

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> "Settings":
        if self.environment == "production":
            secret = self.secret_key.get_secret_value()
            if secret == DEV_SECRET_PLACEHOLDER or len(secret) < 32:
                raise ValueError("SECRET_KEY must be set to a random value of 32+ characters in production")
            if not self.database_url:
                raise ValueError("DATABASE_URL must point at PostgreSQL in production")
            if self.is_postgres and not self.database_app_url:
                raise ValueError(
                    "DATABASE_APP_URL is required in production: the app must connect as its own login role, "
                    "which owns no table (row-level security then holds whatever SQL it runs). As the owner: "
                    "CREATE ROLE marketplace_app LOGIN PASSWORD '<random>'; then "
                    "DATABASE_APP_URL=postgresql+psycopg://marketplace_app:<password>@<host>:5432/<database>")
            if self.database_app_url and self.database_app_url == self.database_url:
                raise ValueError("DATABASE_APP_URL must not be the owner's connection (DATABASE_URL) in production")
        else:
            self._refuse_development_facing_the_internet()
        return self

    def _refuse_development_facing_the_internet(self) -> None:
        """Fail closed when ENVIRONMENT was forgotten: development (the default, so that `make run` needs no
        settings) brings demo data, test cards and the dev outbox, which must never face real users. A public
        PUBLIC_URL or BASE_DOMAIN, or live payment keys, mean a real deployment: it must say production."""
        public = [name for name, host in (("PUBLIC_URL", urlsplit(self.public_url).hostname or ""),
                                          ("BASE_DOMAIN", self.base_domain)) if not _is_local_host(host)]
        live = [name for name, value in (
            ("STRIPE_SECRET_KEY", self.stripe_secret_key.get_secret_value() if self.stripe_secret_key else ""),
            ("PAYPAL_ENVIRONMENT", "live" if self.paypal_environment == "production" else ""))
            if value.startswith(("sk_live_", "rk_live_", "live"))]
        if public or live:
            raise ValueError(
                f"ENVIRONMENT is {self.environment!r} but {', '.join(public + live)} "
                f"{'says' if len(public + live) == 1 else 'say'} this is a real deployment. Set ENVIRONMENT=production "
                "(development brings demo data, test cards and the dev outbox, which must never face real users).")


def _is_local_host(host: str) -> bool:
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache
def get_settings() -> Settings:
    return Settings()
