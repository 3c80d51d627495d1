"""Hotel booking vouchers: the voucher as a PDF (its code: shared/voucher_code.py).

Shared by the voucher service and the email service, so the email can attach a voucher
without the voucher service being up, and both always agree on the code.

The PDF is written directly (shared/voucher_pdf.py) or, for a value outside latin-1, drawn
with fpdf2 (shared/voucher_fpdf.py, imported only then): pure Python, small, no system
libraries (no Cairo, no wkhtmltopdf, no headless browser), so it installs anywhere pip does
and renders in a few milliseconds. Its built-in fonts only cover latin-1, so a value outside
latin-1 (a guest called "李雷") is drawn with a Unicode TrueType font when one is installed
(DejaVu Sans). Embedding a TTF costs tens of milliseconds of font subsetting, so it is only
done for a voucher that needs it. Whatever the font cannot draw becomes "?": rendering never
fails because of a name.

The QR code of the voucher code is made by segno (pure Python, no dependency) as a PNG of one
pixel per module, which the PDF scales up: a few hundred bytes, drawn sharp at any size.
What the guest needs at the hotel (the room type's name, the address, contact, times and the
cancellation policy) comes with the event's optional ``stay_details``.
"""

from __future__ import annotations

import io
from collections.abc import Container, Sequence
from datetime import UTC
from functools import lru_cache
from pathlib import Path

import segno

from shared import voucher_pdf
from shared.events import BookingConfirmed, StayDetails
from shared.voucher_pdf import Line

# Where common distributions install DejaVu Sans; the first that exists is used.
FONT_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf"),  # Fedora, RHEL
    Path("/usr/share/fonts/TTF/DejaVuSans.ttf"),  # Arch
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),  # Alpine, older RHEL
    Path("/usr/local/share/fonts/DejaVuSans.ttf"),  # FreeBSD, hand-installed
)
LATIN1 = range(256)
QR_SIZE = 36  # mm: scans from a phone screen or a print at arm's length
# Any of the eight masks makes a valid code that every reader decodes; letting segno score
# all eight for the "best" one was two thirds of the QR code's cost and a third of the
# whole voucher's (2 of 6 ms), for a short code that scans either way.
QR_MASK = 0
QR_BORDER = 4  # modules of white around the code, as the standard asks
AUTHOR = "Hotel booking"


@lru_cache(maxsize=1)
def unicode_font() -> Path | None:
    """The Unicode TrueType font to embed, or None when none is installed."""
    return next((path for path in FONT_CANDIDATES if path.is_file()), None)


def clean_text(text: str, drawable: Container[int]) -> str:
    """``text`` with every character the font cannot draw (or is not printable) as "?"."""
    if drawable is LATIN1 and text.isascii() and text.isprintable():
        return text  # the usual case, without a look at each character
    return "".join(c if c.isprintable() and ord(c) in drawable else "?" for c in text)


def needs_unicode(text: str) -> bool:
    return any(ord(c) > 255 for c in text)


def qr_png(code: str) -> bytes:
    """The voucher code as a QR code (PNG, black on white): the hotel's desk scans it."""
    buffer = io.BytesIO()
    qr = segno.make(code, error="m", micro=False, mask=QR_MASK)
    qr.save(buffer, kind="png", scale=1, border=QR_BORDER)
    return buffer.getvalue()


def _texts(event: BookingConfirmed) -> list[str]:
    """Every value of the event the voucher prints."""
    details = event.stay_details
    extra = [details.room_type_name, *(v or "" for v in _contact(details))] if details else []
    return [event.hotel_name, event.guest_name, event.guest_email, event.room_type, *extra]


def _contact(details: StayDetails) -> tuple[str | None, str | None, str | None]:
    return details.hotel_address, details.hotel_phone, details.hotel_email


def render_voucher_pdf(event: BookingConfirmed, code: str, *, voided: bool = False) -> bytes:
    """The voucher for ``event`` as PDF bytes; ``voided`` marks it as cancelled.

    The output depends only on the arguments (its dates come from ``event.occurred_at``),
    so the same booking always renders to the same bytes. Written directly
    (shared/voucher_pdf.py) when it can be, by fpdf2 otherwise (a value outside latin-1).
    """
    issued = event.occurred_at
    try:
        created = issued.astimezone(UTC) if issued.tzinfo else issued.replace(tzinfo=UTC)
    except OverflowError:  # e.g. year 1 at UTC+1
        created = issued.replace(tzinfo=UTC)
    sections = _sections(event, code, voided)
    title = clean_text(f"Hotel voucher {code}", LATIN1)
    qr = segno.make(code, error="m", micro=False, mask=QR_MASK)
    unicode_values = any(needs_unicode(t) for t in (*_texts(event), event.currency))
    if not unicode_values:
        latin1 = tuple([_latin1(line) for line in part] for part in sections)
        rows = _grey_rows(qr.matrix)
        info = (title, AUTHOR, created)
        direct = voucher_pdf.write((latin1[0], latin1[1], latin1[2]), rows, QR_SIZE, info)
        if direct is not None:
            return direct
    # Imported here: fpdf2 is about 40 MB of memory, which a process that never meets a
    # non-latin-1 voucher does not need to hold.
    from shared.voucher_fpdf import draw_with_fpdf

    return draw_with_fpdf(sections, qr_png(code), unicode_values, (title, AUTHOR, created))


def _latin1(line: Line) -> Line:
    label = None if line.label is None else clean_text(line.label, LATIN1)
    return Line(
        clean_text(line.text, LATIN1), line.size, line.bold, line.h, label, line.space, line.red
    )


# A module of segno's matrix is 1 (dark) or 0 (light): as grey, 0 (black) or 255 (white).
_GREY = bytes([255] + [0] * 255)


def _grey_rows(matrix: Sequence[bytearray]) -> list[bytes]:
    """The QR code as rows of grey bytes, with its white border (what segno's matrix_iter
    gives, a module at a time, several times slower)."""
    side = b"\xff" * QR_BORDER
    blank = [b"\xff" * (len(matrix[0]) + 2 * QR_BORDER)] * QR_BORDER
    return [*blank, *(side + bytes(row).translate(_GREY) + side for row in matrix), *blank]


def _sections(
    event: BookingConfirmed, code: str, voided: bool
) -> tuple[list[Line], list[Line], list[Line]]:
    """What the voucher says, in three parts: the notice above (voided only), the lines
    beside the QR code, and the fields below it."""
    notice = (
        [
            Line("VOID - booking cancelled", size=24, bold=True, h=12, red=True),
            Line("This voucher is no longer valid.", red=True),
        ]
        if voided
        else []
    )
    beside = [
        Line("Hotel voucher", size=22, bold=True, h=12),
        Line("Voucher code", size=10, space=2),
        Line(code, size=26, bold=True, h=14),
    ]
    fields = [Line(value, label=label) for label, value in _fields(event)]
    fields.append(Line("Please show this voucher at check-in (printed or on screen).", 9, space=6))
    return notice, beside, fields


def _fields(event: BookingConfirmed) -> list[tuple[str, str]]:
    """The hotel, the guest, the room, the dates (with the hotel's times, when known), the
    price, the booking and the cancellation policy."""
    details = event.stay_details
    fields = [("Hotel", event.hotel_name)]
    if details is not None:
        address, phone, email = _contact(details)
        if address:
            fields.append(("Address", address))
        if phone or email:
            fields.append(("Contact", "  |  ".join(v for v in (phone, email) if v)))
    room = f"{details.room_type_name} ({event.room_type})" if details else event.room_type
    check_in, check_out = event.check_in.isoformat(), event.check_out.isoformat()
    if details is not None:
        check_in += f", from {details.check_in_from:%H:%M}"
        check_out += f", until {details.check_out_until:%H:%M}"
    fields += [
        ("Guest", event.guest_name),
        ("Guest email", event.guest_email),
        ("Room type", room),
        ("Check-in", check_in),
        ("Check-out", check_out),
        ("Nights", str(event.nights)),
        ("Total price", f"{event.total_price:,.2f} {event.currency}"),
        ("Booking id", str(event.booking_id)),
        ("Issued", event.occurred_at.date().isoformat()),
    ]
    if details is not None and details.cancellation_policy:
        fields.append(("Cancellation", details.cancellation_policy))
    return fields
