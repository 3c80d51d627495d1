"""The emails this service sends, built as ``email.message.EmailMessage`` (default policy).

Guest-provided values never reach a header unchecked: a control character (CR, LF, ...) in
them means an event that bypassed the API's validation, and it is refused as permanent
before anything is built or sent. In the HTML part every value from the event is escaped.
"""

from __future__ import annotations

import email.errors
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email

from services.email.templates import Body, cancellation_body, confirmation_body
from shared.errors import PermanentError
from shared.events import BookingCancelled, BookingConfirmed
from shared.vouchers import render_voucher_pdf, voucher_code

Kind = Literal["confirmation", "cancellation"]
MESSAGE_ID_DOMAIN = "hotel-booking"
# Control characters, and the Unicode line and paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


@dataclass(frozen=True)
class Outgoing:
    """An email ready to send, with what the service records about it."""

    kind: Kind
    message: EmailMessage
    recipient: str
    voucher_code: str

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


def message_id_for(event_id: UUID) -> str:
    """Derived from the event, so a second send of the same event is recognisable."""
    return f"<{event_id}@{MESSAGE_ID_DOMAIN}>"


def check_header_safe(event: BookingConfirmed | BookingCancelled) -> None:
    """PermanentError if a value that goes into a header holds a control character."""
    for field in ("guest_name", "guest_email", "hotel_name"):
        value: str = getattr(event, field)
        if any(unicodedata.category(c) in _FORBIDDEN_CATEGORIES for c in value):
            raise PermanentError(
                f"{field} of {event.event_type} {event.event_id} contains a control character "
                f"(possible header injection): {value!r}"[:300]
            )


def recipient(event: BookingConfirmed | BookingCancelled) -> Address | str:
    """The To header for the guest: the domain in its ASCII (IDNA) form, so that it never
    ends up RFC 2047-encoded (invalid in an address). A non-ASCII local part needs SMTPUTF8:
    it is given bare, since the default policy cannot encode it with a display name."""
    try:
        valid = validate_email(event.guest_email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PermanentError(f"guest_email is not an email address: {exc}") from exc
    if not valid.local_part.isascii():
        return f"{valid.local_part}@{valid.ascii_domain}"
    return Address(event.guest_name, username=valid.local_part, domain=valid.ascii_domain)


def confirmation_email(
    event: BookingConfirmed, *, email_from: str, now: datetime | None = None
) -> Outgoing:
    """Text and HTML, with the voucher PDF (rendered here: no call to the voucher service)."""
    code = voucher_code(event.booking_id)

    def attach(message: EmailMessage) -> None:
        message.add_attachment(
            render_voucher_pdf(event, code),
            maintype="application",
            subtype="pdf",
            filename=f"voucher-{code}.pdf",
        )

    return _compose(
        "confirmation", event, confirmation_body(event, code), code, email_from, now, attach
    )


def cancellation_email(
    event: BookingCancelled, *, email_from: str, now: datetime | None = None
) -> Outgoing:
    code = voucher_code(event.booking_id)
    return _compose("cancellation", event, cancellation_body(event, code), code, email_from, now)


def _compose(
    kind: Kind,
    event: BookingConfirmed | BookingCancelled,
    body: Body,
    code: str,
    email_from: str,
    now: datetime | None,
    attach: Callable[[EmailMessage], None] | None = None,
) -> Outgoing:
    check_header_safe(event)
    message = EmailMessage()
    try:
        message["From"] = email_from
        message["To"] = recipient(event)
        message["Subject"] = body.subject
        message["Date"] = format_datetime(now or datetime.now(UTC))
        message["Message-ID"] = message_id_for(event.event_id)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        message["X-Booking-Id"] = str(event.booking_id)
        # Quoted-printable keeps the parts 7-bit, for servers without 8BITMIME.
        message.set_content(body.text, cte="quoted-printable")
        message.add_alternative(body.html, subtype="html", cte="quoted-printable")
        if attach is not None:
            attach(message)
    except (ValueError, TypeError, email.errors.MessageError) as exc:
        # Building is deterministic: what fails now fails on every retry.
        raise PermanentError(f"cannot build the {kind} email: {exc}") from exc
    return Outgoing(kind, message, str(message["To"].addresses[0].addr_spec), code)
