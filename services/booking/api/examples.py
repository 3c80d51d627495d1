"""Response examples for the docs UI (/docs): every endpoint shows what each status returns.

Dates are relative to today (see ``schemas.example_booking``), so that the examples, like the
request body "Try it out" sends, are valid whenever the docs are read.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from services.booking.api.problems import summary
from services.booking.errors import BookingServiceError, NotFound, RateLimited, TokenRequired
from services.booking.schemas import example_booking, today
from shared import registry
from shared.http.problems import body as problem_body
from shared.voucher_code import voucher_code

BOOKING_ID = "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b"
VOUCHER_CODE = voucher_code(UUID(BOOKING_ID))  # the real code of the example's booking


def booking() -> dict[str, Any]:
    stay = example_booking()
    step = {"status": "done", "attempts": 1, "updated_at": f"{today()}T09:30:01Z"}
    return {
        "id": BOOKING_ID,
        "status": "confirmed",
        **stay,
        "nights": 3,
        "total_price": "360.00",
        "currency": "EUR",
        "created_at": f"{today()}T09:30:00Z",
        "fulfilment": {
            name: {**step, "last_error": None, "source_event_type": "BookingConfirmed"}
            for name in registry.NAMES
        },
    }


def created() -> dict[str, Any]:
    return {**booking(), "management_token": "q3Vb0m7Yk2Qf9Zx4Lr8Tn1Wc6Hs5Jd0Ep2Ua7Gi3Ko"}


def status_only() -> dict[str, Any]:
    whole = booking()
    return {name: whole[name] for name in ("id", "status", "fulfilment")}


def hotels() -> list[dict[str, Any]]:
    return [
        {
            "id": 1,
            "name": "Hotel Aurora",
            "city": "Lisbon",
            "currency": "EUR",
            "room_types": [
                {
                    "code": "standard",
                    "name": "Standard double",
                    "price_per_night": "120.00",
                    "total_rooms": 20,
                }
            ],
        }
    ]


def availability() -> dict[str, Any]:
    check_in = today() + timedelta(days=30)
    nights = [
        {"night": (check_in + timedelta(days=n)).isoformat(), "free": 20 - n} for n in range(2)
    ]
    return {
        "hotel_id": 1,
        "check_in": check_in.isoformat(),
        "check_out": (check_in + timedelta(days=2)).isoformat(),
        "room_types": [
            {
                "code": "standard",
                "name": "Standard double",
                "total_rooms": 20,
                "price_per_night": "120.00",
                "free_every_night": 19,
                "nights": nights,
            }
        ],
    }


def ok(example: Any, description: str = "Success") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"example": example}}}


def error(
    description: str, detail: str, kind: type[BookingServiceError] | None = None
) -> dict[str, Any]:
    """An error response; its example becomes a problem (api/problem_docs.py), of ``kind``'s
    type when given, else a plain HTTP error of the response's status."""
    example: dict[str, Any] = {"detail": detail}
    if kind is not None:
        example = problem_body(kind.status, detail, problem=kind.problem, title=kind.title)
    return {"description": description, "content": {"application/json": {"example": example}}}


def validation_error(message: str, *location: str | int) -> dict[str, Any]:
    """A 422: the refused fields under ``errors``. The same status answers a well-formed
    request that refers to something that cannot be (an unknown hotel, ...), in ``detail``."""
    issues = [{"type": "value_error", "loc": list(location), "msg": message}]
    example = problem_body(
        422, summary(issues), problem="invalid-request", title="Invalid request", errors=issues
    )
    return {
        "description": "Invalid request",
        "content": {"application/json": {"example": example}},
    }


NOT_JSON = error(
    "The body cannot be read (not UTF-8, ...)",
    "the body cannot be read: send JSON, encoded as UTF-8",
)
TOO_LARGE = error("Body over 16 KiB", "request body larger than 16384 bytes")
NOT_FOUND = error("No such booking", f"booking {BOOKING_ID} not found", NotFound)
TOKEN_REQUIRED = error(
    "No management token (X-Booking-Token), or not this booking's",
    "this needs the booking's management token (X-Booking-Token)",
    TokenRequired,
)
RATE_LIMITED = error(
    "Too many bookings from this address or for this guest email; Retry-After says when",
    "too many booking requests from this address (at most 20/minute); try again in 12 s",
    RateLimited,
)
UNAVAILABLE = {
    "description": "Database unavailable; try again (Retry-After)",
    "content": {
        "application/json": {
            "example": problem_body(
                503,
                "the database is unavailable; try again shortly",
                problem="database-unavailable",
                title="Database unavailable",
            )
        }
    },
}

# The dead-letter console's failure groups (api/admin_groups.py).
DEAD_LETTER_FINGERPRINT = "3fa2c1d09b7e4a51"
DEAD_LETTER_GROUP: dict[str, Any] = {
    "fingerprint": DEAD_LETTER_FINGERPRINT,
    "consumer": "email",
    "event_type": "BookingConfirmed",
    "event_version": 1,
    "exception_type": "PermanentError",
    "frame": "services.email.handlers:send_confirmation",
    "reason": "permanent-failure",
    "reason_pattern": "SMTP refused <email>: <n> <n>.<n>.<n> no such user",
    "queues": ["email.dlq"],
    "count": 3,
    "replayed_before": 0,
    "first_seen": "2026-11-24T09:30:01Z",
    "last_seen": "2026-11-24T09:41:12Z",
    "state": None,
    "until": None,
    "trend": [0] * 22 + [1, 2],
}
DEAD_LETTER_ROW: dict[str, Any] = {
    "id": 41,
    "queue": "email.dlq",
    "message_id": "8d6f3c1a-2b4e-4f5a-9c7d-0e1f2a3b4c5d",
    "event_type": "BookingConfirmed",
    "booking_id": "3f2b8c1e-5d4a-4e6f-9a7b-1c2d3e4f5a6b",
    "reason": "permanent-failure",
    "exception": "PermanentError: SMTP refused ada@example.com: 550 5.1.1 no such user",
    "attempts": 1,
    "replay_count": 0,
    "first_failure_at": "2026-11-24T09:41:12Z",
    "last_failure_at": "2026-11-24T09:41:12Z",
}
LIVE_STATE: dict[str, Any] = {
    "service": "email",
    "queue": "email.booking-events",
    "ready": 0,
    "in_flight": 0,
    "consumers": 1,
    "dead_letters": 3,
    "rate_in": 1.2,
    "rate_out": 1.2,
}
