"""What the dead-letter operations show and take: a parked message, the filters, the summaries.

Records are frozen pydantic models so the CLI (``--json``) and the admin API serialise them
the same way.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aio_pika.abc import AbstractIncomingMessage
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.deadletters.errors import InvalidRequest
from shared.deadletters.fingerprint import fingerprint
from shared.messaging import retry

# At most 8 digits: even 99999999w fits in a timedelta (a longer number overflowed it).
DURATION_PATTERN = r"^ *[0-9]{1,8} *[smhdw] *$"
_DURATION = re.compile(r"^ *([0-9]{1,8}) *([smhdw]) *$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Counts end up in the audit table's `integer` columns.
PG_INT_MAX = 2**31 - 1
# What the OpenAPI document says of a label: no C0 or C1 control character. NUL above all:
# PostgreSQL cannot store it in text, and the audit row is written before anything is done.
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``45s``, ``1w`` (a number of at most 8 digits)."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidRequest(
            f"not a duration: {text!r} (use e.g. 45s, 30m, 2h, 1d, 1w; at most 8 digits)"
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (such as NUL, CR or LF)")
    return value


# A message id, x-reason or event type: an AMQP short string (at most 255 bytes), printable.
Label = Annotated[
    str,
    Field(min_length=1, max_length=255, json_schema_extra={"pattern": NO_CONTROL_PATTERN}),
    AfterValidator(no_control_characters),
]


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _when(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


class DeadLetter(BaseModel):
    """One parked message, read from its properties and the runtime's failure headers.

    Messages the broker dead-lettered itself (delivery limit exceeded) lack our headers; the
    broker's own ``x-first-death-reason`` and ``x-death`` time stand in for them."""

    model_config = ConfigDict(frozen=True)

    message_id: str | None
    event_type: str | None
    booking_id: str | None
    reason: str | None
    exception: str | None
    attempts: int
    replay_count: int
    first_failure_at: datetime | None
    last_failure_at: datetime | None
    # What the console groups by (fingerprint.py); defaults keep older clients' JSON valid.
    consumer: str = ""
    event_version: int | None = None
    exception_type: str | None = None
    frame: str | None = None
    fingerprint: str = ""

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> DeadLetter:
        h: dict[str, Any] = dict(message.headers or {})
        deaths = h.get("x-death")
        newest = deaths[0] if isinstance(deaths, list) and deaths else None
        death: dict[str, Any] = newest if isinstance(newest, dict) else {}
        death_time = _when(death.get("time"))
        exception_type = h.get(retry.H_EXCEPTION_TYPE)
        message_text = h.get(retry.H_EXCEPTION_MESSAGE)
        exception = f"{exception_type}: {message_text}" if exception_type else None
        # Ours when we parked it; else the broker's newest death (x-death is newest
        # first), e.g. delivery_limit after a crash loop that followed a retry.
        reason = h.get(retry.H_REASON) or death.get("reason") or h.get("x-first-death-reason")
        body = _json_object(message.body)
        event_type = message.type or _text(body.get("event_type"))
        raw_version = body.get("version")
        version = raw_version if isinstance(raw_version, int) else None
        consumer = str(h.get(retry.H_SERVICE) or (message.routing_key or "").split(".")[0])
        frame = str(h.get(retry.H_EXCEPTION_FRAME) or "") or None
        return cls(
            message_id=message.message_id,
            event_type=event_type,
            booking_id=message.correlation_id or _text(body.get("booking_id")),
            reason=reason,
            exception=str(exception) if exception else None,
            attempts=_int(h.get(retry.H_ATTEMPTS)),
            replay_count=_int(h.get(retry.H_REPLAY_COUNT)),
            first_failure_at=_when(h.get(retry.H_FIRST_FAILURE)) or death_time,
            last_failure_at=_when(h.get(retry.H_LAST_FAILURE))
            or death_time
            or _when(message.timestamp),
            consumer=consumer,
            event_version=version,
            exception_type=str(exception_type) if exception_type else None,
            frame=frame,
            fingerprint=fingerprint(
                consumer,
                event_type,
                version,
                str(exception_type) if exception_type else reason,
                frame,
                str(message_text or reason or ""),
            ),
        )

    @property
    def failed_since(self) -> datetime | None:
        """What ``--older-than`` compares: the first failure, else the last, else nothing."""
        return self.first_failure_at or self.last_failure_at


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


class Filters(BaseModel):
    """Which messages an operation takes. Set fields are ANDed; ``ids`` selects exactly those
    message ids. Nothing selected is refused (``select_all`` must say so explicitly)."""

    model_config = ConfigDict(frozen=True)

    select_all: bool = False
    ids: tuple[Label, ...] = ()
    reason: Label | None = None
    event_type: Label | None = None
    older_than: timedelta | None = None
    limit: int | None = Field(default=None, ge=1, le=PG_INT_MAX)
    # A failure group of the console (DeadLetter.fingerprint).
    fingerprint: Label | None = None

    @property
    def narrowed(self) -> bool:
        """Some filter is set (``older_than`` 0s too: it still needs a known failure time)."""
        return bool(self.ids) or any(
            f is not None for f in (self.reason, self.event_type, self.older_than, self.fingerprint)
        )

    def check(self) -> None:
        if not (self.select_all or self.narrowed):
            raise InvalidRequest("say which messages: all, some ids, or a filter")

    @property
    def takes_all(self) -> bool:
        """Every message matches: a sweep need not even read the headers."""
        return self.select_all and not self.narrowed

    def matches(self, dead: DeadLetter, now: datetime) -> bool:
        if self.ids and dead.message_id not in self.ids:
            return False
        if self.reason is not None and dead.reason != self.reason:
            return False
        if self.event_type is not None and dead.event_type != self.event_type:
            return False
        if self.fingerprint is not None and dead.fingerprint != self.fingerprint:
            return False
        if self.older_than is not None:
            since = dead.failed_since
            if since is None or now - since < self.older_than:
                return False
        return True

    def for_audit(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


class QueueInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service": "email",
                    "queue": "email.dlq",
                    "target_queue": "email.booking-events",
                    "messages": 3000,
                    "oldest_age_seconds": 1260.5,
                }
            ]
        }
    )

    service: str
    queue: str
    target_queue: str
    messages: int
    oldest_age_seconds: float | None = Field(
        description="Seconds since the message at the head of the queue was dead-lettered"
    )


class Summary(BaseModel):
    """The outcome of a replay or purge. ``replayed`` counts the messages confirmed on the
    target queue (for a dry run: that would be), ``purged`` those discarded; ``skipped``
    those that did not match and stayed; ``failed`` those that matched but stayed because
    the broker did not confirm their copy."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "operation": "replay",
                    "queue": "email.dlq",
                    "dry_run": False,
                    "total": 3000,
                    "seen": 3000,
                    "replayed": 3000,
                    "purged": 0,
                    "skipped": 0,
                    "failed": 0,
                    "error": None,
                    "audit_id": 12,
                }
            ]
        }
    )

    operation: str
    queue: str
    dry_run: bool = False
    total: int = Field(default=0, description="Messages ready in the queue when it started")
    seen: int = 0
    replayed: int = 0
    purged: int = 0
    skipped: int = 0
    failed: int = 0
    error: str | None = None
    audit_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.error is None


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    operation: str
    queue: str
    filters: dict[str, Any]
    dry_run: bool
    status: str
    seen: int | None
    replayed: int | None
    purged: int | None
    skipped: int | None
    failed: int | None
    error: str | None
    finished_at: datetime | None
