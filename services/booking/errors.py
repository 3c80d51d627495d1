"""Errors of the booking service, each mapped to one HTTP status in ``app.py``.

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


class BookingServiceError(Exception):
    """Root of every error the booking service raises on purpose."""


class NotFound(BookingServiceError):
    pass


class TokenRequired(BookingServiceError):
    pass


class InvalidBooking(BookingServiceError):
    pass


class IdempotencyKeyReused(BookingServiceError):
    pass


class NoAvailability(BookingServiceError):
    pass


class VoucherVoided(BookingServiceError):
    pass


class RateLimited(BookingServiceError):
    """``retry_after``: whole seconds until a request would be accepted again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
