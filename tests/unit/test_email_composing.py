"""The emails the email service builds: structure, escaping, headers, refusals."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.email import composing
from services.email.composing import cancellation_email, check_header_safe, confirmation_email
from services.email.templates import confirmation_body
from shared.errors import PermanentError
from shared.events import BookingCancelled, BookingConfirmed, StayDetails
from shared.voucher_code import voucher_code
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


def reparsed(message: EmailMessage) -> EmailMessage:
    """What a receiving server sees."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
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
    mail = reparsed(outgoing.message)
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
    mail = reparsed(confirmation_email(event, email_from=FROM, now=NOW).message)
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
        reparsed(confirmation_email(confirmed, email_from=FROM).message),
        reparsed(cancellation_email(cancelled, email_from=FROM).message),
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
    mail = reparsed(confirmation_email(event, email_from=FROM).message)
    html = part(mail, "html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;Bob&quot;" in html
    assert "A&lt;b&gt;B&lt;/b&gt;" in html
    assert name in part(mail, "plain")
    assert mail["To"].addresses[0].display_name == name


def test_a_cancellation_has_no_attachment_and_says_the_booking_is_cancelled() -> None:
    event = BookingCancelled.model_validate(facts())
    outgoing = cancellation_email(event, email_from=FROM)
    mail = reparsed(outgoing.message)
    assert list(mail.iter_attachments()) == []
    assert mail.get_content_type() == "multipart/alternative"
    assert "cancelled" in mail["Subject"]
    assert "no longer valid" in part(mail, "plain")
    assert outgoing.kind == "cancellation"


def test_non_ascii_values_travel_as_7_bit_encoded_text() -> None:
    event = BookingConfirmed.model_validate(facts(guest_name="Zoë 李雷", hotel_name="Hôtel Été"))
    raw = confirmation_email(event, email_from=FROM).message.as_bytes()
    assert raw.isascii()
    mail = reparsed(confirmation_email(event, email_from=FROM).message)
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


def _without_boundaries(raw: bytes) -> bytes:
    return re.sub(rb"={15}\d+==", b"BOUNDARY", raw)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"guest_name": "Zoë 李雷", "hotel_name": "Hôtel Été"}, {"guest_email": "zoë@example.com"}],
)
def test_the_reusing_header_registry_changes_nothing_in_what_is_sent(
    overrides: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    confirmation = BookingConfirmed.model_validate(facts(**overrides))
    cancellation = BookingCancelled.model_validate(facts(**overrides))

    def both() -> list[bytes]:
        return [
            _without_boundaries(outgoing.message.as_bytes(policy=email.policy.SMTPUTF8))
            for outgoing in (
                confirmation_email(confirmation, email_from=FROM, now=NOW),
                cancellation_email(cancellation, email_from=FROM, now=NOW),
            )
        ]

    reusing = [both(), both()]  # the second reuses what the first one built
    # The stdlib as it comes: its default policy, every header parsed from its text.
    monkeypatch.setattr(composing, "POLICY", email.policy.default)
    monkeypatch.setattr(composing, "_parsed", lambda name, value: value)
    assert reusing == [both()] * 2


def test_the_email_names_the_room_type_and_the_check_in_time_when_the_event_has_them() -> None:
    details = StayDetails(
        room_type_name="Standard double", check_in_from=clock(15), check_out_until=clock(11)
    )
    body = confirmation_body(events.confirmed(stay_details=details), "V-1")
    assert "Standard double" in body.text
    assert ", from 15:00" in body.text
    assert "Standard double" in body.html
    assert "standard" in confirmation_body(events.confirmed(), "V-1").text  # older events
