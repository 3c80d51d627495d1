"""Settings common to every process. Each process has one class built on these; field names
match environment variable names (case-insensitive), and the defaults work on a developer
machine with PostgreSQL and RabbitMQ on 127.0.0.1."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.db.retention import PROCESSED_EVENTS_MIN_AGE
from shared.errors import ConfigurationError
from shared.messaging import addresses
from shared.secrets import url_password, weakness

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/booking"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _seconds_or_iso(value: object) -> object:
    """An age from the environment: seconds ("86400") or ISO 8601 ("P1D", "PT12H")."""
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return float(value)
    return value


# A retention age (shared/db/retention.py).
Age = Annotated[timedelta, BeforeValidator(_seconds_or_iso), Field(gt=timedelta(0))]


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # A developer's machine, the tests, the benchmarks: the example secrets of
    # deploy/.env.example, short tokens and a broker user shared by every service are
    # accepted. Off (the default) a process refuses to start with them: a system started
    # without thinking about it is a production one.
    dev_mode: bool = False
    # Apply this process's schema migrations at start (the tests, which run as PostgreSQL's
    # superuser). Off, the process only checks that its schema is migrated and refuses to
    # start if not: its own role may not change the schema; the migration step
    # (python -m shared.db.provision) does that, as the superuser.
    migrate_on_start: bool = False
    database_url: str = DEFAULT_DATABASE_URL
    # One broker, or a cluster's nodes listed where the host goes
    # (amqp://user:password@rabbitmq:5672,rabbitmq-2:5672,rabbitmq-3:5672/hotel): every
    # connection goes to the first of them that answers, and to another when it is lost.
    amqp_url: str = DEFAULT_AMQP_URL
    log_level: str = "INFO"
    # json: one object per line (for log shippers); text: readable lines (the local runner).
    log_format: Literal["json", "text"] = "json"
    # Where spans go: none (default), console (stderr) or otlp (needs the [otlp] extra; set
    # OTEL_EXPORTER_OTLP_ENDPOINT). Trace context is propagated whatever this is.
    otel_traces_exporter: Literal["none", "console", "otlp"] = "none"
    # Readiness checks and the outbox gauges' query give up after this long.
    health_check_timeout: float = Field(default=2.0, gt=0)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_acquire_timeout: float = Field(default=5.0, gt=0)
    db_command_timeout: float = Field(default=10.0, gt=0)
    amqp_connect_timeout: float = Field(default=5.0, gt=0)
    amqp_publish_timeout: float = Field(default=5.0, gt=0)
    # How long to keep retrying PostgreSQL at start-up before giving up with a clear error.
    startup_timeout: float = Field(default=60.0, gt=0)

    @field_validator("amqp_url")
    @classmethod
    def _broker_addresses(cls, value: str) -> str:
        addresses.split(value)  # refused at start with its reason, not at the first connect
        return value

    def secrets(self) -> dict[str, tuple[str | None, int]]:
        """Every secret of this process: setting name -> (value or None, minimum bytes)."""
        return {
            "DATABASE_URL": (url_password(self.database_url), 0),
            "AMQP_URL": (url_password(self.amqp_url), 0),
        }

    @model_validator(mode="after")
    def _no_example_secrets(self) -> Self:
        if self.dev_mode:
            return self
        problems = [
            f"{name} {why}"
            for name, (value, min_bytes) in self.secrets().items()
            if value is not None and (why := weakness(value, min_bytes=min_bytes))
        ]
        if problems:
            hint = " (DEV_MODE=true allows them on a developer's machine)"
            raise ValueError("; ".join(problems) + hint)
        return self


class ConsumingSettings(CommonSettings):
    """Settings of any process that runs the consumer runtime (and so has an outbox)."""

    # The outbox relay: rows per claim; it wakes at once after each commit, and the sweep
    # catches rows written by other replicas, or left behind while the broker was down.
    outbox_batch_size: int = Field(default=200, ge=1, le=10_000)
    outbox_sweep_interval: float = Field(default=1.0, gt=0)
    outbox_retry_max_delay: float = Field(default=5.0, gt=0)
    relay_enabled: bool = True
    prefetch: int = Field(default=50, ge=1, le=10_000)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_base_delay: float = Field(default=1.0, gt=0)
    retry_max_delay: float = Field(default=60.0, gt=0)
    shutdown_grace: float = Field(default=10.0, ge=0)
    # Deliveries recorded per transaction (shared/messaging/batching.py): only for handlers
    # that write nothing but their own database (refused for email and notification).
    batch_size: int = Field(default=1, ge=1, le=1_000)
    # Milliseconds a batch not yet full waits for more deliveries before its transaction
    # (0: it takes what came in the same loop turn). A wait makes every delivery later by up
    # to that much: only where none waits on it (the booking service's reports).
    batch_linger_ms: int = Field(default=0, ge=0, le=1_000)
    # A message body over this is dead-lettered (message-too-large) without being decoded.
    # Keep it under the broker's max_message_size (2 MiB in deploy/rabbitmq/rabbitmq.conf),
    # so the dead-lettered copy, same body, is always accepted.
    max_message_bytes: int = Field(default=1024 * 1024, ge=1024, le=512 * 1024 * 1024)
    # A delivery held longer than this (taken, never settled) turns /health/ready false.
    stall_timeout: float = Field(default=300.0, gt=0)
    # Retention (shared/db/retention.py): seconds between passes (0: no deletion), rows per
    # DELETE, and the ages (seconds or ISO 8601, e.g. P30D) after which rows go.
    retention_interval: float = Field(default=3600.0, ge=0)
    retention_batch_size: int = Field(default=1000, ge=1, le=100_000)
    outbox_sent_max_age: Age = timedelta(days=7)
    processed_events_max_age: Age = timedelta(days=30)

    @model_validator(mode="after")
    def _records_outlive_redeliveries(self) -> Self:
        # A record deleted while a copy of its event can still come lets that copy act again.
        floor = max(
            PROCESSED_EVENTS_MIN_AGE, timedelta(seconds=self.max_attempts * self.retry_max_delay)
        )
        if self.processed_events_max_age < floor:
            raise ValueError(
                f"PROCESSED_EVENTS_MAX_AGE must be at least {floor} (redeliveries, retries and "
                "dead-letter replays of an event must still find its record)"
            )
        return self


class ConsumerSettings(ConsumingSettings):
    """Settings of a consumer service (notification, email, voucher)."""

    # Simulated work per message in milliseconds (0 = none), for benchmarks and tests. Each
    # service also reads <SERVICE>_SIMULATED_LATENCY_MS, so one environment can give every
    # step its own latency (the seed profile: voucher 1000, email 500, notification 1000).
    simulated_latency_ms: int = Field(default=0, ge=0)
    # CPU priority at start (shared/priority.py): 0 normal, 19 the lowest. The local runner
    # and the benchmarks run the consumers at 19, so the booking API comes first.
    niceness: int = Field(default=0, ge=0, le=19)
    # The ops HTTP server (/health/live, /health/ready, /metrics): each service sets its
    # own default port; 0 picks a free port and logs it.
    http_host: str = "127.0.0.1"
    # Unset: the service's port in shared/registry.py (0: any free port, logged).
    http_port: int | None = Field(default=None, ge=0, le=65535)


S = TypeVar("S", bound=BaseSettings)


def load_settings(settings_class: type[S], **values: Any) -> S:
    """The settings of a process, or ConfigurationError with every problem on one line.

    Pydantic's own message repeats each refused input, which may be a secret (a URL with its
    password); this one names the setting and the rule only."""
    try:
        return settings_class(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]).upper()
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        raise ConfigurationError("; ".join(problems)) from exc


def simulated_latency(service: str) -> Any:
    """The ``simulated_latency_ms`` field of one service: ``<SERVICE>_SIMULATED_LATENCY_MS``
    first, then the shared ``SIMULATED_LATENCY_MS``."""
    names = AliasChoices(f"{service}_simulated_latency_ms", "simulated_latency_ms")
    return Field(default=0, ge=0, validation_alias=names)
