"""Errors of the booking service, each with the HTTP status and the RFC 9457 problem type it
is answered with (api/problems.py turns any of them into an ``application/problem+json``).

The tree::

    BookingServiceError
    ├── NotFound              404: no such booking (or hotel, on a path)
    ├── TokenRequired         401: no management token, or not this booking's
    ├── InvalidBooking        422: refers to a hotel or room type that does not exist
    ├── IdempotencyKeyReused  422: same Idempotency-Key, different request body
    ├── NoAvailability        409: a night of the stay has no free room of that type
    ├── VoucherVoided         410: the voucher was voided (the booking was cancelled)
    └── RateLimited           429: too many bookings from this address or for this email
"""

from __future__ import annotations

from typing import ClassVar


class BookingServiceError(Exception):
    """Root of every error the booking service raises on purpose. ``problem`` names its
    problem type (a URI under api/problems.py's prefix), ``title`` is that type's summary."""

    status: ClassVar[int] = 400
    problem: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"


class NotFound(BookingServiceError):
    status = 404
    problem = "not-found"
    title = "Not found"


class TokenRequired(BookingServiceError):
    status = 401
    problem = "token-required"
    title = "The booking's management token is needed"


class InvalidBooking(BookingServiceError):
    status = 422
    problem = "unknown-room"
    title = "No such hotel or room type"


class IdempotencyKeyReused(BookingServiceError):
    status = 422
    problem = "idempotency-key-reused"
    title = "Idempotency-Key used with another body"


class NoAvailability(BookingServiceError):
    status = 409
    problem = "no-availability"
    title = "No room free for the whole stay"


class VoucherVoided(BookingServiceError):
    status = 410
    problem = "voucher-voided"
    title = "The voucher was voided"


class RateLimited(BookingServiceError):
    """``retry_after``: whole seconds until a request would be accepted again."""

    status = 429
    problem = "rate-limited"
    title = "Too many booking requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
