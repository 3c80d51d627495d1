"""The emails this service sends, built as ``email.message.EmailMessage`` (default policy).

Guest-provided values never reach a header unchecked: a control character (CR, LF, ...) in
them means an event that bypassed the API's validation, and it is refused as permanent
before anything is built or sent. In the HTML part every value from the event is escaped.

Building is most of an email's CPU cost, so work that repeats is done once: the policy's
header registry keeps the header classes it makes (the stdlib's makes a new class for each
of the twenty-odd headers an email sets) and the MIME headers that are the same in every
email, and the From and Auto-Submitted headers are parsed once. What is produced is
unchanged: the default policy's settings, the same header values.
"""

from __future__ import annotations

import email.errors
import email.policy
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from functools import lru_cache
from typing import Any, Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email

from services.email.templates import Body, cancellation_body, confirmation_body
from shared.errors import PermanentError
from shared.events import BookingCancelled, BookingConfirmed
from shared.voucher_code import voucher_code
from shared.vouchers import render_voucher_pdf

Kind = Literal["confirmation", "cancellation"]
MESSAGE_ID_DOMAIN = "hotel-booking"
# Control characters, and the Unicode line and paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
# Headers whose values come from the MIME structure only, never from an event.
_STRUCTURAL = frozenset({"content-type", "content-transfer-encoding", "mime-version"})


class _ReusingHeaderRegistry(HeaderRegistry):
    """A header registry that repeats less work, for the same headers.

    The stdlib's builds a class (``type(...)``) at every lookup, and the policy looks one
    up for every header set or counted: this one builds each class once. And the MIME
    headers the stdlib writes itself while building the parts (``Content-Type: text/plain;
    charset="utf-8"``, ``MIME-Version: 1.0``, ...) take the same few values in every email:
    each is parsed once. Header classes hold no state and header objects are immutable, so
    both are safely shared between messages and threads."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}
        self._structural = lru_cache(maxsize=32)(super().__call__)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls

    def __call__(self, name: str, value: Any) -> BaseHeader:
        # Not a boundary (random, set when the message is flattened): never seen again.
        if name.lower() in _STRUCTURAL and isinstance(value, str) and "boundary=" not in value:
            header: BaseHeader = self._structural(name, value)
        else:
            header = super().__call__(name, value)
        return header


# email.policy.default with the registry above: every other setting, and so the output, is
# the default policy's.
POLICY = email.policy.default.clone(header_factory=_ReusingHeaderRegistry())


@lru_cache(maxsize=16)
def _parsed(name: str, value: str) -> BaseHeader:
    """A header parsed once: a message stores a header object of the same name as it is.
    Only for values that are the same on every email (header objects are immutable)."""
    header: BaseHeader = POLICY.header_factory(name, value)
    return header


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
                f"(possible header injection): {value!r}"[:300],
                code="invalid-guest-details",
            )


def recipient(event: BookingConfirmed | BookingCancelled) -> Address | str:
    """The To header for the guest: the domain in its ASCII (IDNA) form, so that it never
    ends up RFC 2047-encoded (invalid in an address). A non-ASCII local part needs SMTPUTF8:
    it is given bare, since the default policy cannot encode it with a display name."""
    try:
        valid = validate_email(event.guest_email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PermanentError(
            f"guest_email is not an email address: {exc}", code="invalid-guest-details"
        ) from exc
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
    message = EmailMessage(policy=POLICY)
    try:
        message["From"] = _parsed("From", email_from)
        message["To"] = recipient(event)
        message["Subject"] = body.subject
        # A datetime is formatted as format_datetime would, without parsing the text back.
        message["Date"] = now or datetime.now(UTC)
        message["Message-ID"] = message_id_for(event.event_id)
        # RFC 3834: no auto-replies, please.
        message["Auto-Submitted"] = _parsed("Auto-Submitted", "auto-generated")
        # Quoted-printable keeps the parts 7-bit, for servers without 8BITMIME.
        message.set_content(body.text, cte="quoted-printable")
        message.add_alternative(body.html, subtype="html", cte="quoted-printable")
        if attach is not None:
            attach(message)
    except (ValueError, TypeError, email.errors.MessageError) as exc:
        # Building is deterministic: what fails now fails on every retry.
        raise PermanentError(
            f"cannot build the {kind} email: {exc}", code="email-not-renderable"
        ) from exc
    return Outgoing(kind, message, str(message["To"].addresses[0].addr_spec), code)
