"""The emails the email service builds: structure, escaping, headers, refusals."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.email import composing
from services.email.composing import cancellation_email, check_header_safe, confirmation_email
from services.email.templates import Body, cancellation_body, confirmation_body
from shared.errors import PermanentError
from shared.events import BookingCancelled, BookingConfirmed, StayDetails
from shared.voucher_code import voucher_code
from shared.vouchers import render_voucher_pdf
from tests.support import events

FROM = "Hotel Booking <bookings@hotel.example>"
NOW = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)


def facts(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "booking_id": uuid4(),
        "hotel_id": 1,
        "hotel_name": "Hotel Aurora",
        "room_type": "standard",
        "check_in": date(2027, 3, 1),
        "check_out": date(2027, 3, 2),
        "nights": 1,
        "total_price": Decimal("1240.5"),
        "currency": "EUR",
        "guest_name": "Ada Lovelace",
        "guest_email": "ada@example.com",
    }
    return fields | overrides


def reparsed(outgoing: composing.Outgoing) -> EmailMessage:
    """What a receiving server sees."""
    parsed = email.message_from_bytes(outgoing.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body(preferencelist=(subtype,))
    assert body is not None
    return str(body.get_content())


def test_a_confirmation_is_text_and_html_alternatives_plus_the_voucher_pdf() -> None:
    event = BookingConfirmed.model_validate(facts())
    code = voucher_code(event.booking_id)
    outgoing = confirmation_email(event, email_from=FROM, now=NOW)
    mail = reparsed(outgoing)
    assert [p.get_content_type() for p in mail.walk()] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "application/pdf",
    ]
    [pdf] = list(mail.iter_attachments())
    assert pdf.get_filename() == f"voucher-{code}.pdf"
    assert pdf.get_content().startswith(b"%PDF-")
    assert code in mail["Subject"]
    for text in (part(mail, "plain"), part(mail, "html")):
        assert code in text
        assert str(event.booking_id) in text
    assert "1,240.50 EUR" in part(mail, "plain")
    assert "1 night)" in part(mail, "plain")
    assert outgoing.kind == "confirmation"
    assert outgoing.voucher_code == code
    assert outgoing.recipient == "ada@example.com"


def test_the_headers_name_the_guest_the_sender_and_a_message_id_from_the_event() -> None:
    event_id = UUID("12345678-1234-4234-8234-123456789abc")
    event = BookingConfirmed.model_validate(facts(event_id=event_id))
    mail = reparsed(confirmation_email(event, email_from=FROM, now=NOW))
    assert mail["Message-ID"] == "<12345678-1234-4234-8234-123456789abc@hotel-booking>"
    assert mail["From"] == FROM
    assert mail["To"] == "Ada Lovelace <ada@example.com>"
    assert mail["Date"] == "Sat, 02 Jan 2027 03:04:05 +0000"
    assert mail["Auto-Submitted"] == "auto-generated"


def test_neither_the_subject_nor_any_header_carries_the_booking_id() -> None:
    # Subjects are shown in lock-screen notifications, mail lists and relays' logs; the
    # body names the booking for the guest who quotes it.
    booking = facts()
    confirmed = BookingConfirmed.model_validate(booking)
    cancelled = BookingCancelled.model_validate(booking)
    for mail in (
        reparsed(confirmation_email(confirmed, email_from=FROM)),
        reparsed(cancellation_email(cancelled, email_from=FROM)),
    ):
        headers = "\n".join(f"{name}: {value}" for name, value in mail.items())
        assert str(confirmed.booking_id) not in headers
        assert voucher_code(confirmed.booking_id) in mail["Subject"]
        assert str(confirmed.booking_id) in part(mail, "plain")


def test_the_same_event_always_gets_the_same_message_id() -> None:
    event = BookingConfirmed.model_validate(facts())
    first = confirmation_email(event, email_from=FROM)
    second = confirmation_email(event, email_from=FROM)
    assert first.message_id == second.message_id == f"<{event.event_id}@hotel-booking>"


def test_guest_and_hotel_values_are_escaped_in_the_html_part_and_kept_in_the_text() -> None:
    name = "<script>alert('x')</script> & \"Bob\""
    event = BookingConfirmed.model_validate(facts(guest_name=name, hotel_name="A<b>B</b>"))
    mail = reparsed(confirmation_email(event, email_from=FROM))
    html = part(mail, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Bob&quot;" in html
    assert "A&lt;b&gt;B&lt;/b&gt;" in html
    assert name in part(mail, "plain")
    assert mail["To"].addresses[0].display_name == name


def test_a_cancellation_has_no_attachment_and_says_the_booking_is_cancelled() -> None:
    event = BookingCancelled.model_validate(facts())
    outgoing = cancellation_email(event, email_from=FROM)
    mail = reparsed(outgoing)
    assert list(mail.iter_attachments()) == []
    assert mail.get_content_type() == "multipart/alternative"
    assert "cancelled" in mail["Subject"]
    assert "no longer valid" in part(mail, "plain")
    assert outgoing.kind == "cancellation"


def test_non_ascii_values_travel_as_7_bit_encoded_text() -> None:
    event = BookingConfirmed.model_validate(facts(guest_name="Zoë 李雷", hotel_name="Hôtel Été"))
    raw = confirmation_email(event, email_from=FROM).data
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")  # SMTP's line ends only
    mail = reparsed(confirmation_email(event, email_from=FROM))
    assert "Hôtel Été" in mail["Subject"]
    assert "Zoë 李雷" in part(mail, "plain")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("guest_name", "Ada\r\nBcc: victim@example.com"),
        ("guest_name", "Ada\nBcc: victim@example.com"),
        ("guest_name", "Ada\rX"),
        ("guest_name", "Ada\x00"),
        ("guest_name", "Ada\tLovelace"),
        ("guest_name", "Ada\u2028Bcc: victim@example.com"),
        ("guest_name", "Ada\x85Lovelace"),
        ("guest_email", "ada@example.com\r\nBcc: victim@example.com"),
        ("hotel_name", "Aurora\r\nBcc: victim@example.com"),
    ],
)
def test_control_characters_in_header_values_are_refused_as_permanent(
    field: str, value: str
) -> None:
    event = BookingConfirmed.model_validate(facts(**{field: value}))
    with pytest.raises(PermanentError, match=f"{field} .* control character"):
        confirmation_email(event, email_from=FROM)
    with pytest.raises(PermanentError):
        cancellation_email(
            BookingCancelled.model_validate(facts(**{field: value})), email_from=FROM
        )


@pytest.mark.parametrize("name", ["Zoë O'Brien", "李雷", "José\u00a0María", "Ada (the first)"])
def test_ordinary_names_are_accepted(name: str) -> None:
    check_header_safe(BookingConfirmed.model_validate(facts(guest_name=name)))


def test_a_guest_email_that_is_not_an_address_is_refused_as_permanent() -> None:
    event = BookingConfirmed.model_validate(facts(guest_email="not an address"))
    with pytest.raises(PermanentError, match="not an email address"):
        confirmation_email(event, email_from=FROM)


def _stdlib_email(
    event: BookingConfirmed | BookingCancelled, body: Body, pdf: bytes | None
) -> EmailMessage:
    """The email as the service built it with ``EmailMessage`` before composing directly:
    the reference for what a receiving server must read."""
    message = EmailMessage()
    message["From"] = FROM
    message["To"] = composing.recipient(event)
    message["Subject"] = body.subject
    message["Date"] = NOW
    message["Message-ID"] = composing.message_id_for(event.event_id)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body.text, cte="quoted-printable")
    message.add_alternative(body.html, subtype="html", cte="quoted-printable")
    if pdf is not None:
        code = voucher_code(event.booking_id)
        message.add_attachment(
            pdf, maintype="application", subtype="pdf", filename=f"voucher-{code}.pdf"
        )
    return message


def _as_read(message: EmailMessage) -> list[tuple[Any, ...]]:
    """Every part as a receiving server reads it: its headers (decoded, boundaries and
    MIME-Version left out) and its decoded content."""
    seen: list[tuple[Any, ...]] = []
    for part in message.walk():
        headers = sorted(
            (name.lower(), str(value))
            for name, value in part.items()
            if name.lower() not in ("content-type", "mime-version")
        )
        content = None if part.is_multipart() else part.get_content()
        seen.append((part.get_content_type(), part.get_param("charset"), headers, content))
    return seen


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"guest_name": "Zoë 李雷 " + "with a name long enough to be folded " * 3},
        {"hotel_name": "Hôtel Été Å…", "guest_name": 'Ada "the first" (Lovelace), Jr.'},
        {"guest_email": "zoë@example.com"},
        {"guest_email": "ada@bücher.example"},
    ],
)
def test_a_receiving_server_reads_what_the_email_message_version_wrote(
    overrides: dict[str, Any],
) -> None:
    booking = facts(**overrides)
    confirmed = BookingConfirmed.model_validate(booking)
    cancelled = BookingCancelled.model_validate(booking)
    code = voucher_code(confirmed.booking_id)
    pdf = render_voucher_pdf(confirmed, code)
    pairs = [
        (
            confirmation_email(confirmed, email_from=FROM, now=NOW),
            _stdlib_email(confirmed, confirmation_body(confirmed, code), pdf),
        ),
        (
            cancellation_email(cancelled, email_from=FROM, now=NOW),
            _stdlib_email(cancelled, cancellation_body(cancelled, code), None),
        ),
    ]
    for outgoing, reference in pairs:
        policy = email.policy.SMTPUTF8 if outgoing.smtputf8 else email.policy.SMTP
        sent = email.message_from_bytes(
            reference.as_bytes(policy=policy), policy=email.policy.default
        )
        assert isinstance(sent, EmailMessage)
        assert _as_read(reparsed(outgoing)) == _as_read(sent)
        assert outgoing.recipient == reference["To"].addresses[0].addr_spec
        assert outgoing.subject == str(reference["Subject"])


def test_the_same_event_is_composed_to_the_same_bytes() -> None:
    event = BookingConfirmed.model_validate(facts())
    first = confirmation_email(event, email_from=FROM, now=NOW)
    assert first.data == confirmation_email(event, email_from=FROM, now=NOW).data
    assert first.sender == "bookings@hotel.example"


def test_composing_directly_costs_less_than_half_of_the_email_message_version() -> None:
    event = BookingConfirmed.model_validate(facts())
    code = voucher_code(event.booking_id)
    pdf = render_voucher_pdf(event, code)
    body = confirmation_body(event, code)

    def direct() -> bytes:
        attachment = composing._pdf_part(pdf, f"voucher-{code}.pdf")
        return composing._compose("confirmation", event, body, code, FROM, NOW, attachment).data

    def stdlib() -> bytes:
        return _stdlib_email(event, body, pdf).as_bytes(policy=email.policy.SMTP)

    def cost(compose: Callable[[], bytes]) -> float:
        compose()
        started = time.perf_counter()
        for _ in range(50):
            compose()
        return time.perf_counter() - started

    assert cost(direct) < cost(stdlib) / 2


def test_the_email_names_the_room_type_and_the_check_in_time_when_the_event_has_them() -> None:
    details = StayDetails(
        room_type_name="Standard double", check_in_from=clock(15), check_out_until=clock(11)
    )
    body = confirmation_body(events.confirmed(stay_details=details), "V-1")
    assert "Standard double" in body.text
    assert ", from 15:00" in body.text
    assert "Standard double" in body.html
    assert "standard" in confirmation_body(events.confirmed(), "V-1").text  # older events
