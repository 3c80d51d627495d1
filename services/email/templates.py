"""What the emails say: subject, plain text and HTML. Every value from the event is
HTML-escaped in the HTML part (guest names and hotel names are data, never markup)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from shared.events import BookingCancelled, BookingConfirmed

SIGNATURE = "Hotel Booking"


@dataclass(frozen=True)
class Body:
    subject: str
    text: str
    html: str


def _facts(event: BookingConfirmed | BookingCancelled, code: str) -> list[tuple[str, str]]:
    nights = f"{event.nights} night" + ("" if event.nights == 1 else "s")
    details = event.stay_details  # absent from events written before it existed
    room = details.room_type_name if details else event.room_type
    check_in = event.check_in.isoformat()
    if details is not None:
        check_in += f", from {details.check_in_from:%H:%M}"
    return [
        ("Hotel", event.hotel_name),
        ("Room type", room),
        ("Check-in", check_in),
        ("Check-out", f"{event.check_out.isoformat()} ({nights})"),
        ("Total price", f"{event.total_price:,.2f} {event.currency}"),
        ("Booking id", str(event.booking_id)),
        ("Voucher code", code),
    ]


def _text(greeting: str, lead: str, facts: list[tuple[str, str]], closing: str) -> str:
    rows = "\n".join(f"  {label + ':':<14}{value}" for label, value in facts)
    return f"{greeting}\n\n{lead}\n\n{rows}\n\n{closing}\n\n{SIGNATURE}\n"


def _html(greeting: str, lead: str, facts: list[tuple[str, str]], closing: str) -> str:
    rows = "\n".join(
        f'<tr><th align="left">{escape(label)}</th><td>{escape(value)}</td></tr>'
        for label, value in facts
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f"<p>{escape(greeting)}</p>\n<p>{escape(lead)}</p>\n"
        f'<table cellpadding="4">\n{rows}\n</table>\n'
        f"<p>{escape(closing)}</p>\n<p>{escape(SIGNATURE)}</p>\n</body></html>\n"
    )


def confirmation_body(event: BookingConfirmed, code: str) -> Body:
    greeting = f"Dear {event.guest_name},"
    lead = f"your booking at {event.hotel_name} is confirmed."
    closing = f"Your voucher {code} is attached (voucher-{code}.pdf): please show it at check-in."
    facts = _facts(event, code)
    return Body(
        # No booking id in the subject: subjects are shown in notifications, lists and
        # mail logs; the body names it for the guest who quotes it.
        subject=f"Your booking at {event.hotel_name} is confirmed (voucher {code})",
        text=_text(greeting, lead, facts, closing),
        html=_html(greeting, lead, facts, closing),
    )


def cancellation_body(event: BookingCancelled, code: str) -> Body:
    greeting = f"Dear {event.guest_name},"
    lead = f"your booking at {event.hotel_name} has been cancelled."
    closing = f"Voucher {code} is no longer valid. We hope to welcome you another time."
    facts = _facts(event, code)
    return Body(
        subject=f"Your booking at {event.hotel_name} is cancelled (voucher {code})",
        text=_text(greeting, lead, facts, closing),
        html=_html(greeting, lead, facts, closing),
    )
