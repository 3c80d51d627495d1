"""HTTP request and response bodies of the booking API."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from shared import registry

MAX_NIGHTS = 30
STEPS = registry.NAMES
# Ids are PostgreSQL `integer` columns: a larger number would fail inside the driver (a 500),
# so the schema refuses it first, and says so in the OpenAPI document.
PG_INT_MAX = 2**31 - 1
# What the OpenAPI document says of free text: no C0 or C1 control character (NUL among
# them, which PostgreSQL cannot store in text). The validators below refuse at least these.
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"


def today() -> date:
    return datetime.now(UTC).date()


def _json_integer(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# JSON Schema's integer, which the OpenAPI document promises: 3 and 3.0, never "3" or true
# (pydantic's lax mode takes those; its strict mode alone refuses 3.0). Use it after a
# Field(strict=True, <bounds>) in Annotated: bounds placed after it leave the document.
JSON_INTEGER = BeforeValidator(_json_integer)


def example_booking() -> dict[str, Any]:
    """A valid request: a seeded hotel and room type, 30 days ahead (app.py regenerates the
    OpenAPI document each day, so the example in /docs is valid on any day it is read)."""
    check_in = today() + timedelta(days=30)
    return {
        "hotel_id": 1,
        "room_type": "standard",
        "check_in": check_in.isoformat(),
        "check_out": (check_in + timedelta(days=3)).isoformat(),
        "guest_name": "Ada Lovelace",
        "guest_email": "ada@example.com",
    }


def _add_example(schema: dict[str, Any]) -> None:
    schema["examples"] = [example_booking()]


def reject_control_characters(value: str) -> str:
    """CR and LF in a name would let a guest inject e-mail headers downstream; NUL cannot be
    stored in PostgreSQL text."""
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise ValueError("must not contain control characters (such as NUL, CR or LF)")
    return value


def beyond_horizon(check_in: date, horizon_days: int) -> str | None:
    """Why a check-in is too far ahead to book or look up (BOOKING_HORIZON_DAYS), or None."""
    last = today() + timedelta(days=horizon_days)
    if check_in > last:
        return f"check_in must be at most {horizon_days} days ahead (on or before {last})"
    return None


class BookingRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, json_schema_extra=_add_example
    )

    hotel_id: Annotated[int, Field(strict=True, gt=0, le=PG_INT_MAX), JSON_INTEGER] = Field(
        description="A hotel id from GET /hotels"
    )
    room_type: str = Field(
        min_length=1,
        max_length=50,
        description="A room type code",
        json_schema_extra={"pattern": NO_CONTROL_PATTERN},
    )
    check_in: date = Field(
        description="Today or later, within the booking horizon (730 days unless configured)"
    )
    check_out: date = Field(
        description=f"The morning of departure: after check_in, at most {MAX_NIGHTS} nights"
    )
    guest_name: str = Field(
        min_length=1,
        max_length=200,
        description="No control characters (CR, LF, NUL, ...)",
        json_schema_extra={"pattern": NO_CONTROL_PATTERN},
    )
    guest_email: EmailStr = Field(max_length=254)

    _no_control = field_validator("room_type", "guest_name", mode="before")(
        lambda v: reject_control_characters(v) if isinstance(v, str) else v
    )

    @model_validator(mode="after")
    def _check_stay(self) -> BookingRequest:
        if self.check_out <= self.check_in:
            raise ValueError("check_out must be after check_in")
        if self.check_in < today():
            raise ValueError("check_in must not be in the past")
        if self.nights > MAX_NIGHTS:
            raise ValueError(f"a stay is at most {MAX_NIGHTS} nights")
        return self

    @property
    def nights(self) -> int:
        return (self.check_out - self.check_in).days


class StepProgress(BaseModel):
    """One fulfilment step as its consumer last reported it; pending until it reports."""

    status: Literal["pending", "retrying", "done", "failed"] = "pending"
    attempts: int = 0
    updated_at: datetime | None = None
    last_error: str | None = Field(
        default=None,
        description=(
            "A short code for the step's last failure (smtp-temporary-failure, smtp-rejected, "
            "webhook-temporary-failure, webhook-rejected, invalid-guest-details, "
            "email-not-renderable, invalid-message, database-unavailable, database-error, "
            "temporary-failure, permanent-failure, internal-error, unclassified-failure); "
            "the details stay in the service's logs"
        ),
    )
    source_event_type: str | None = Field(
        default=None, description="The event the step last worked on"
    )


def _pending() -> dict[str, StepProgress]:
    return {step: StepProgress() for step in STEPS}


_FULFILMENT = "voucher, email and notification: pending, retrying, done or failed"


class BookingStatus(BaseModel):
    """What anyone with the booking's id may see: no guest details."""

    id: UUID
    status: Literal["confirmed", "cancelled"]
    fulfilment: dict[str, StepProgress] = Field(default_factory=_pending, description=_FULFILMENT)


class Booking(BaseModel):
    """The whole booking, for the holder of its management token."""

    id: UUID
    status: Literal["confirmed", "cancelled"]
    hotel_id: int
    room_type: str
    check_in: date
    check_out: date
    guest_name: str
    guest_email: str
    nights: int
    total_price: Decimal
    currency: str
    created_at: datetime
    fulfilment: dict[str, StepProgress] = Field(default_factory=_pending, description=_FULFILMENT)


class BookingCreated(Booking):
    management_token: str = Field(
        description=(
            "Shown once: send it as the X-Booking-Token header to see the guest's details, "
            "download the voucher or cancel. Only its hash is stored; it cannot be shown again."
        )
    )


class RoomType(BaseModel):
    code: str
    name: str
    price_per_night: Decimal
    total_rooms: int


class Hotel(BaseModel):
    id: int
    name: str
    city: str
    currency: str
    room_types: list[RoomType]


class NightAvailability(BaseModel):
    night: date
    free: int


class RoomTypeAvailability(BaseModel):
    code: str
    name: str
    total_rooms: int
    price_per_night: Decimal
    free_every_night: int = Field(description="Rooms free for the whole stay")
    nights: list[NightAvailability]


class Availability(BaseModel):
    hotel_id: int
    check_in: date
    check_out: date
    room_types: list[RoomTypeAvailability]
