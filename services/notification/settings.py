"""Configuration of the notification process, read from environment variables."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator

from shared.secrets import MIN_KEY_BYTES
from shared.settings import ConsumerSettings, simulated_latency

# A placeholder: refused outside DEV_MODE (shared/secrets.py), like every example secret.
DEFAULT_WEBHOOK_SECRET = "change-me-in-production"


def check_http_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host, else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


class NotificationSettings(ConsumerSettings):
    """Configuration of the notification process, read from environment variables."""

    simulated_latency_ms: int = simulated_latency("notification")

    # Comma-separated webhook URLs (empty: none); see ``webhook_urls`` for the parsed list.
    notification_webhook_urls: str = ""
    # Signs webhook bodies (X-Signature) and derives the push topics of bookings.
    notification_webhook_secret: SecretStr = SecretStr(DEFAULT_WEBHOOK_SECRET)
    # Overall time limit of one HTTP delivery (connect, send, answer).
    notification_timeout: float = Field(default=5.0, gt=0, le=300)
    # Base URL of an ntfy-compatible server (empty: no push), e.g. https://ntfy.sh
    ntfy_url: str | None = None
    # The ops server, which also serves the booking feed (SSE + history); port 0 picks a
    # free port and logs it. NOTIFICATION_HTTP_HOST/PORT are the older names, still read.
    http_host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("http_host", "notification_http_host")
    )
    http_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        validation_alias=AliasChoices("http_port", "notification_http_port"),
    )
    # Seconds between comment heartbeats on an idle SSE feed.
    notification_feed_heartbeat: float = Field(default=15.0, gt=0)
    # Feed streams open at once, per client address (429 beyond) and in all (503 beyond).
    notification_feed_max_streams_per_client: int = Field(default=20, ge=1, le=100_000)
    notification_feed_max_streams: int = Field(default=1000, ge=1, le=100_000)

    @field_validator("notification_webhook_urls", mode="before")
    @classmethod
    def _normalise_urls(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            value = ",".join(str(item) for item in value)
        if not isinstance(value, str):
            return value
        urls = [check_http_url(url.strip()) for url in value.split(",") if url.strip()]
        return ",".join(dict.fromkeys(urls))  # each URL once, in order

    @field_validator("notification_webhook_secret")
    @classmethod
    def _non_empty_secret(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("the webhook secret must not be empty")
        return value

    @field_validator("ntfy_url", mode="before")
    @classmethod
    def _normalise_ntfy_url(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().rstrip("/")
            return check_http_url(value) if value else None
        return value

    def secrets(self) -> dict[str, tuple[str | None, int]]:
        secret = self.notification_webhook_secret.get_secret_value()
        return {**super().secrets(), "NOTIFICATION_WEBHOOK_SECRET": (secret, MIN_KEY_BYTES)}

    @property
    def webhook_urls(self) -> tuple[str, ...]:
        return tuple(url for url in self.notification_webhook_urls.split(",") if url)

    @property
    def uses_default_secret(self) -> bool:
        return self.notification_webhook_secret.get_secret_value() == DEFAULT_WEBHOOK_SECRET
