from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr, field_validator

from services.booking.rate_limit import Rate
from services.booking.senders import parse_senders
from shared.messaging import addresses
from shared.secrets import MIN_KEY_BYTES, url_password
from shared.settings import Age, ConsumingSettings


class BookingSettings(ConsumingSettings):
    """Configuration of the booking process, read from environment variables. The consumer
    settings (PREFETCH, MAX_ATTEMPTS, ...) apply to its consumer of fulfilment reports."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    db_pool_size: int = Field(default=20, ge=1, le=200)
    # Open every pooled connection, and prepare the booking's statements on each, before the
    # service takes requests: opened and prepared under a first burst instead, they made that
    # burst's first second wait (README, "What limits it", 5.).
    db_pool_warm: bool = True
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    # How far ahead a stay may start (POST /bookings, availability): without a horizon, a
    # booking for 9999 takes a room that no one will ever use, and asks grow the inventory.
    booking_horizon_days: int = Field(default=730, ge=1, le=3650)
    # Idempotency keys are deleted after this long (a client's retries come well before).
    idempotency_keys_max_age: Age = timedelta(days=1)
    # The progress-report consumer shares the pool with the API. Its handlers only write
    # this database, so the reports in hand are recorded BATCH_SIZE per transaction: one
    # pooled connection for up to PREFETCH reports, not one each (one each queued reports
    # ahead of requests in the pool's FIFO and stretched the API's p99: bench scenario 1).
    prefetch: int = Field(default=50, ge=1, le=10_000)
    batch_size: int = Field(default=50, ge=1, le=1_000)
    # Reports trickle in (three a booking, as each step ends): batches of what came in one
    # loop turn were mostly of one. Waiting 20 ms for more cut the booking process's CPU for
    # a booking's reports by a third or more (README, "Batched records"); a report shows up
    # to 20 ms later.
    batch_linger_ms: int = Field(default=20, ge=0, le=1_000)
    shutdown_grace: float = Field(default=5.0, ge=0)
    # Bearer token of the admin API (/admin/dlq); unset or empty, that API is disabled.
    admin_token: SecretStr | None = None
    # The broker account of the admin API's dead-letter operations (reading every DLQ,
    # replaying into every work queue): an operator's, not the booking service's own
    # least-privilege user. Unset: AMQP_URL.
    admin_amqp_url: str | None = None
    # The database role of the admin API's audit table (the ops schema, which belongs to
    # the dead-letter tools, not to the booking service's role). Unset: DATABASE_URL.
    admin_database_url: str | None = None
    # RabbitMQ's management API (http://user:password@host:15672), read by the dead-letter
    # console's live state for messages in flight and rates; unset, it shows depths and
    # consumers only (from the broker's answers to passive declares).
    admin_management_url: str | None = None
    # The broker user each fulfilment step reports as ("step=user,..."): a report is
    # applied only when its AMQP user_id, which the broker checks, is that step's user
    # (VoucherIssued and VoucherVoided: the voucher step's). With DEV_MODE, reports from
    # this service's own broker user are taken too: on a developer's broker every service
    # shares one user (guest), which cannot tell the services apart. A step not named
    # reports as the broker user named after it (as in the definitions, one per service).
    report_senders: str = ""
    # POST /bookings per client address (every request counts: shared addresses, offices
    # and carrier NAT, make this the loose one) and per guest email (only bookings made
    # count: it protects one inbox from a flood of confirmations). "N/period".
    rate_limit_per_address: str = "20/minute"
    rate_limit_per_email: str = "10/hour"
    # The proxies whose X-Forwarded-For / X-Forwarded-Proto uvicorn believes (comma-separated
    # addresses or networks, "*" for any): behind a reverse proxy, its address, or every
    # client shares the proxy's address and so its rate limit.
    forwarded_allow_ips: str = "127.0.0.1"

    @field_validator("rate_limit_per_address", "rate_limit_per_email")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        Rate.parse(value)  # refused at start with its reason, not at the first booking
        return value

    @field_validator("admin_amqp_url")
    @classmethod
    def _admin_broker_addresses(cls, value: str | None) -> str | None:
        if value:
            addresses.split(value)  # several nodes, as in AMQP_URL
        return value

    @field_validator("report_senders")
    @classmethod
    def _senders(cls, value: str) -> str:
        parse_senders(value)  # refused at start, not at the first report
        return value

    def secrets(self) -> dict[str, tuple[str | None, int]]:
        token = self.admin_token.get_secret_value() if self.admin_token else None
        return {
            **super().secrets(),
            "ADMIN_TOKEN": (token or None, MIN_KEY_BYTES),  # empty: the admin API is off
            "ADMIN_AMQP_URL": (url_password(self.admin_amqp_url), 0),
            "ADMIN_DATABASE_URL": (url_password(self.admin_database_url), 0),
            "ADMIN_MANAGEMENT_URL": (url_password(self.admin_management_url), 0),
        }

    @property
    def admin_enabled(self) -> bool:
        return self.admin_token is not None and bool(self.admin_token.get_secret_value())
