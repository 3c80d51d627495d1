"""Errors of the booking service, each mapped to one HTTP status in ``app.py``.

The tree::

    BookingServiceError
    ├── NotFound              404: no such booking (or hotel, on a path)
    ├── InvalidBooking        422: refers to a hotel or room type that does not exist
    ├── IdempotencyKeyReused  422: same Idempotency-Key, different request body
    ├── NoAvailability        409: a night of the stay has no free room of that type
    └── VoucherVoided         410: the voucher was voided (the booking was cancelled)
"""

from __future__ import annotations


class BookingServiceError(Exception):
    """Root of every error the booking service raises on purpose."""


class NotFound(BookingServiceError):
    pass


class InvalidBooking(BookingServiceError):
    pass


class IdempotencyKeyReused(BookingServiceError):
    pass


class NoAvailability(BookingServiceError):
    pass


class VoucherVoided(BookingServiceError):
    pass
