"""The emails this service sends, composed directly as the bytes handed to the SMTP server.

Guest-provided values never reach a header unchecked: a control character (CR, LF, ...) in
them means an event that bypassed the API's validation, and it is refused as permanent
before anything is built or sent. In the HTML part every value from the event is escaped.

Composing was most of an email's CPU after the voucher PDF: ``email.message.EmailMessage``
builds a tree of parts with twenty-odd header objects, and aiosmtplib flattened it again
for every send. The structure of these emails never changes (multipart/mixed of an
alternative, text and HTML, and the voucher PDF), so only what varies is made per email:
the headers that carry guest values (To, Subject) are still made and folded by the stdlib's
header registry (RFC 2047 encoding, quoting, folding: the rules are easy to get wrong), the
parts are encoded by the stdlib's own quoted-printable and base64 encoders with its line
lengths, and the rest is a fixed frame. What a receiving server reads is what the
``EmailMessage`` version wrote (tests/unit/test_email_composing.py compares them).

The boundaries are derived from the event (as the Message-ID is): ``=_`` can occur in no
quoted-printable or base64 text, so they never collide with a part; and a second send of an
event is the same bytes.
"""

from __future__ import annotations

import base64
import email.errors
import email.policy
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from email import quoprimime
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.utils import format_datetime
from functools import lru_cache
from typing import Literal
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
CRLF = "\r\n"
# The stdlib's line length (policy.max_line_length): 76 characters of encoded text a line.
_MAX_LINE = 78
_BASE64_CHUNK = _MAX_LINE // 4 * 3


class _ReusingHeaderRegistry(HeaderRegistry):
    """The stdlib's registry builds a header class (``type(...)``) at every lookup: this one
    builds each once. Header classes hold no state, so they are shared safely."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


# What aiosmtplib flattened with: SMTP (CRLF), or SMTPUTF8 for an internationalised address.
_REGISTRY = _ReusingHeaderRegistry()
SMTP_POLICY = email.policy.SMTP.clone(header_factory=_REGISTRY)
SMTPUTF8_POLICY = email.policy.SMTPUTF8.clone(header_factory=_REGISTRY)


@dataclass(frozen=True)
class Outgoing:
    """An email ready to send (its envelope and its bytes), with what the service records."""

    kind: Kind
    data: bytes
    sender: str  # envelope: the From address
    recipient: str  # envelope: the guest's address
    subject: str
    message_id: str
    voucher_code: str

    @property
    def smtputf8(self) -> bool:
        """Whether the server must support SMTPUTF8 (an address that is not ASCII)."""
        return not (self.sender.isascii() and self.recipient.isascii())


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


@lru_cache(maxsize=8)
def _from_header(email_from: str, utf8: bool) -> tuple[str, str]:
    """The From header line and the envelope sender, made once per setting."""
    header = _header("From", email_from, utf8)
    return _fold(header, utf8), str(header.addresses[0].addr_spec)  # type: ignore[attr-defined]


def _header(name: str, value: object, utf8: bool) -> BaseHeader:
    policy = SMTPUTF8_POLICY if utf8 else SMTP_POLICY
    header: BaseHeader = policy.header_factory(name, value)
    return header


def _fold(header: BaseHeader, utf8: bool) -> str:
    return header.fold(policy=SMTPUTF8_POLICY if utf8 else SMTP_POLICY)


def _text_part(subtype: str, text: str) -> str:
    # As email.contentmanager encodes text: its lines joined by "\n", then quoted-printable.
    # (bytes.splitlines: str.splitlines would also split at \x85, a byte of many UTF-8
    # characters, "Å" among them.)
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    encoded = quoprimime.body_encode(body.decode("latin-1"), _MAX_LINE).replace("\n", CRLF)
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: quoted-printable{CRLF}{CRLF}{encoded}"
    )


def _pdf_part(pdf: bytes, filename: str) -> str:
    encoded = CRLF.join(
        base64.b64encode(pdf[i : i + _BASE64_CHUNK]).decode("ascii")
        for i in range(0, len(pdf), _BASE64_CHUNK)
    )
    return (
        f"Content-Type: application/pdf{CRLF}Content-Transfer-Encoding: base64{CRLF}"
        f'Content-Disposition: attachment; filename="{filename}"{CRLF}{CRLF}{encoded}{CRLF}'
    )


def _multipart(subtype: str, boundary: str, parts: list[str]) -> str:
    inner = "".join(f"--{boundary}{CRLF}{part}{CRLF}" for part in parts)
    return (
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"{CRLF}{CRLF}'
        f"{inner}--{boundary}--{CRLF}"
    )


def confirmation_email(
    event: BookingConfirmed, *, email_from: str, now: datetime | None = None
) -> Outgoing:
    """Text and HTML, with the voucher PDF (rendered here: no call to the voucher service)."""
    code = voucher_code(event.booking_id)
    check_header_safe(event)
    attachment = _pdf_part(render_voucher_pdf(event, code), f"voucher-{code}.pdf")
    body = confirmation_body(event, code)
    return _compose("confirmation", event, body, code, email_from, now, attachment)


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
    attachment: str | None = None,
) -> Outgoing:
    check_header_safe(event)
    to = recipient(event)
    message_id = message_id_for(event.event_id)
    try:
        rcpt = str(to.addr_spec) if isinstance(to, Address) else to
        utf8 = not rcpt.isascii()
        from_line, sender = _from_header(email_from, utf8)
        if not utf8 and not sender.isascii():
            utf8 = True
            from_line, sender = _from_header(email_from, utf8)
        headers = (
            from_line
            + _fold(_header("To", to, utf8), utf8)
            + _fold(_header("Subject", body.subject, utf8), utf8)
            # As the stdlib's Date header formats a datetime.
            + f"Date: {format_datetime(now or datetime.now(UTC))}{CRLF}"
            + f"Message-ID: {message_id}{CRLF}"
            # RFC 3834: no auto-replies, please.
            + f"Auto-Submitted: auto-generated{CRLF}"
            + f"MIME-Version: 1.0{CRLF}"
        ).encode("utf-8" if utf8 else "ascii")
    except (ValueError, TypeError, IndexError, email.errors.MessageError) as exc:
        # Building is deterministic: what fails now fails on every retry.
        raise PermanentError(
            f"cannot build the {kind} email: {exc}", code="email-not-renderable"
        ) from exc
    # Quoted-printable keeps the parts 7-bit, for servers without 8BITMIME.
    texts = [_text_part("plain", body.text), _text_part("html", body.html)]
    tag = event.event_id.hex
    content = _multipart("alternative", f"=_a{tag}", texts)
    if attachment is not None:
        content = _multipart("mixed", f"=_m{tag}", [content, attachment])
    data = headers + content.encode("ascii")
    return Outgoing(kind, data, sender, rcpt, body.subject, message_id, code)
