"""Event schemas: small frozen pydantic records, named in the past tense.

Every event carries ``event_id``, ``event_type``, ``version``, ``occurred_at`` and
``booking_id``. A consumer decodes a body with :func:`decode_event`; a new version of
an event is a new class registered under the same ``event_type``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from shared import registry
from shared.errors import InvalidMessage, UnhandledEventType


def utcnow() -> datetime:
    return datetime.now(UTC)


class Event(BaseModel):
    # Consumers ignore fields they do not know, so a producer can add optional fields
    # without a new version; anything incompatible is a new version.
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    # The step (shared/registry.py) whose "done" report this event also is, when its handler
    # emits it: the runtime then sends no FulfilmentProgressed(done) beside it, and stamps
    # the delivery's ``attempts`` on it instead (one message back to the booking service
    # instead of two).
    reports_done_for: ClassVar[str | None] = None
    event_id: UUID = Field(default_factory=uuid4)
    version: int
    occurred_at: datetime = Field(default_factory=utcnow)
    booking_id: UUID

    def to_json(self) -> bytes:
        body = self.model_dump(mode="json")
        body["event_type"] = self.event_type
        return json.dumps(body, separators=(",", ":")).encode()


class StayDetails(BaseModel):
    """What the guest needs at the hotel, from the hotel's and the room type's rows: printed on
    the voucher and in the emails. Added after v1 shipped, hence optional in the events."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    room_type_name: str = Field(min_length=1, max_length=200, examples=["Deluxe with river view"])
    hotel_address: str | None = Field(default=None, max_length=500)
    hotel_phone: str | None = Field(default=None, max_length=50)
    hotel_email: str | None = Field(default=None, max_length=254)
    check_in_from: time = Field(description="The room is ready from this time (hotel's time)")
    check_out_until: time = Field(description="The room must be left by this time")
    cancellation_policy: str | None = Field(default=None, max_length=500)


class _BookingFacts(Event):
    """What a consumer needs to know about a booking, carried by every booking event."""

    # Bounded like the booking service's own columns: a careless publisher's event with a
    # megabyte of name or a price of 1e300 is refused here, before a handler renders it.
    hotel_id: int = Field(ge=1, le=2**31 - 1)
    hotel_name: str = Field(min_length=1, max_length=200)
    room_type: str = Field(min_length=1, max_length=50)
    check_in: date
    check_out: date
    nights: int = Field(ge=1, le=366)
    total_price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    guest_name: str = Field(min_length=1, max_length=200)
    guest_email: str = Field(min_length=3, max_length=254)
    # Optional: added after v1 shipped (a v1 body without it is still valid).
    stay_details: StayDetails | None = None


class BookingConfirmed(_BookingFacts):
    event_type: ClassVar[str] = "BookingConfirmed"
    version: Literal[1] = 1


class BookingCancelled(_BookingFacts):
    event_type: ClassVar[str] = "BookingCancelled"
    version: Literal[1] = 1


def _known_step(value: str) -> str:
    if value not in registry.NAMES:
        raise ValueError(f"unknown step {value!r}; the steps are {', '.join(registry.NAMES)}")
    return value


# A fulfilment step is a consumer service of the registry (shared/registry.py).
Step = Annotated[
    str,
    AfterValidator(_known_step),
    WithJsonSchema({"type": "string", "enum": list(registry.NAMES)}),
]
StepStatus = Literal["retrying", "done", "failed"]


class FulfilmentProgressed(Event):
    """A consumer's report on one step of a booking: sent by the consumers, kept by the
    booking service, which shows it as the booking's fulfilment status."""

    event_type: ClassVar[str] = "FulfilmentProgressed"
    version: Literal[1] = 1
    step: Step
    status: StepStatus
    attempts: int = Field(ge=0, le=1_000_000)
    source_event_id: UUID
    source_event_type: str = Field(max_length=100)
    # The failure's text, for operators on the bus; the booking API never shows it.
    error: str | None = Field(default=None, max_length=1000)
    # The failure as a short public code (shared/messaging/progress.py lists them). Added
    # after v1 shipped, so optional: a report without it reads as "unclassified-failure".
    error_code: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")


class _VoucherStepDone(Event):
    """An event of the voucher step that is also its "done" report (``reports_done_for``)."""

    reports_done_for: ClassVar[str] = "voucher"
    code: str = Field(max_length=50)
    # The attempts the booking event took, stamped by the runtime: set, this event is the
    # step's done report. Added after v1 shipped, so optional: a producer without it sends
    # a FulfilmentProgressed(done) as well.
    attempts: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Attempts the booking event took. Set: this event is also the voucher "
        "step's done report, and no FulfilmentProgressed(done) is sent for it.",
    )


class VoucherIssued(_VoucherStepDone):
    event_type: ClassVar[str] = "VoucherIssued"
    version: Literal[1] = 1
    pdf_base64: str = Field(description="The voucher PDF, base64-encoded", max_length=4_000_000)


class VoucherVoided(_VoucherStepDone):
    event_type: ClassVar[str] = "VoucherVoided"
    version: Literal[1] = 1


EVENT_TYPES: dict[tuple[str, int], type[Event]] = {
    (model.event_type, model.model_fields["version"].default): model
    for model in (
        BookingConfirmed,
        BookingCancelled,
        FulfilmentProgressed,
        VoucherIssued,
        VoucherVoided,
    )
}
# An event's older versions, read by rewriting their body into the next version's: a breaking
# change raises an event's version (a new class above, under the same event_type), and its
# upcaster here lets every consumer take both while old messages are still around (in
# queues, dead-letter queues, outboxes). Checked against docs/asyncapi.json by
# shared/messaging/contract.py. None yet: every event is at its first version.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}
KNOWN_EVENT_TYPES = frozenset(event_type for event_type, _ in EVENT_TYPES)
BOOKING_EVENTS = frozenset({BookingConfirmed.event_type, BookingCancelled.event_type})


def decode_event(body: bytes, handled: frozenset[str] | None = None) -> Event:
    """Parse and validate a message body.

    Raises InvalidMessage for anything that can never be handled, and UnhandledEventType
    for a well-formed event of a type outside ``handled`` (or unknown to this code base).
    """
    try:
        raw: Any = json.loads(body)
    except Exception as exc:  # not only JSONDecodeError: see below
        # Valid-looking JSON can still fail to become Python: an integer of more than 4,300
        # digits (ValueError), arrays nested beyond the recursion limit (RecursionError).
        raise InvalidMessage(
            f"body is not JSON Python can read: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(raw, dict):
        raise InvalidMessage("body is not a JSON object")
    event_type, version = raw.get("event_type"), raw.get("version")
    if not isinstance(event_type, str) or not isinstance(version, int):
        raise InvalidMessage("body has no string event_type and integer version")
    if event_type not in KNOWN_EVENT_TYPES or (handled is not None and event_type not in handled):
        raise UnhandledEventType(f"event type {event_type!r} is not handled here")
    raw, version = _upcast(raw, event_type, version)
    model = EVENT_TYPES.get((event_type, version))
    if model is None:
        raise InvalidMessage(f"unknown version {version} of {event_type}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidMessage(f"{event_type} v{version} does not match its schema: {exc}") from exc
    except Exception as exc:  # whatever else a hostile body provokes
        raise InvalidMessage(f"{event_type} v{version} cannot be validated: {exc!r}") from exc


def _upcast(raw: dict[str, Any], event_type: str, version: int) -> tuple[dict[str, Any], int]:
    """The body as the newest version it can be upcast to (as it is, without an upcaster)."""
    while (event_type, version) in UPCASTERS and (event_type, version) not in EVENT_TYPES:
        try:
            raw = UPCASTERS[(event_type, version)](raw)
        except Exception as exc:  # a body the upcaster cannot rewrite is a broken message
            raise InvalidMessage(f"{event_type} v{version} cannot be upcast: {exc!r}") from exc
        if not isinstance(raw.get("version"), int) or raw["version"] <= version:
            raise InvalidMessage(f"the upcaster of {event_type} v{version} did not raise it")
        version = raw["version"]
    return raw, version
