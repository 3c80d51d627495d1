"""A booking's voucher code: deterministic, so the voucher service, the email service and
the booking API's examples agree on it without asking each other. Apart from the PDF
(shared/vouchers.py), so that knowing a code does not import a PDF library."""

from __future__ import annotations

import hashlib
from uuid import UUID


def voucher_code(booking_id: UUID) -> str:
    """The booking's voucher code, e.g. ``V-3F2A-9C1B-77D0``: the same on every call."""
    digest = hashlib.sha256(f"voucher:{booking_id}".encode()).hexdigest()[:12].upper()
    return "V-" + "-".join(digest[i : i + 4] for i in range(0, 12, 4))
