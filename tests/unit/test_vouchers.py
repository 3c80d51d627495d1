from __future__ import annotations

import io
import re
import time
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from shared import voucher_pdf, vouchers
from shared.events import BookingConfirmed, StayDetails
from shared.voucher_code import voucher_code
from shared.vouchers import render_voucher_pdf

DEJAVU_INSTALLED = vouchers.unicode_font() is not None


def confirmed(**overrides: Any) -> BookingConfirmed:
    fields: dict[str, Any] = {
        "booking_id": UUID("6f1c2b9e-0d4a-4c51-9f0e-2b7a3c8d9e10"),
        "occurred_at": datetime(2029, 12, 24, 9, 30, tzinfo=UTC),
        "hotel_id": 1,
        "hotel_name": "Hotel Aurora",
        "room_type": "suite",
        "check_in": date(2030, 1, 1),
        "check_out": date(2030, 1, 3),
        "nights": 2,
        "total_price": Decimal("700.00"),
        "currency": "EUR",
        "guest_name": "Ada Lovelace",
        "guest_email": "ada@example.com",
    }
    return BookingConfirmed(**(fields | overrides))


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture
def without_unicode_font(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a fresh machine with no TrueType font installed."""
    monkeypatch.setattr(vouchers, "unicode_font", lambda: None)


def test_the_voucher_code_is_v_and_three_groups_of_four_uppercase_hex_digits() -> None:
    assert re.fullmatch(r"V-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}", voucher_code(uuid4()))


def test_the_voucher_code_is_the_same_for_the_same_booking() -> None:
    booking_id = uuid4()
    assert voucher_code(booking_id) == voucher_code(UUID(str(booking_id)))


def test_the_voucher_code_is_a_known_value_so_every_service_computes_the_same() -> None:
    # sha256("voucher:6f1c2b9e-0d4a-4c51-9f0e-2b7a3c8d9e10"), first 12 hex digits.
    assert voucher_code(UUID("6f1c2b9e-0d4a-4c51-9f0e-2b7a3c8d9e10")) == "V-D777-4891-33F5"


def test_different_bookings_get_different_voucher_codes() -> None:
    codes = {voucher_code(uuid4()) for _ in range(1000)}
    assert len(codes) == 1000


def test_the_pdf_is_a_real_pdf_with_one_page() -> None:
    pdf = render_voucher_pdf(confirmed(), "V-AAAA-BBBB-CCCC")
    assert pdf.startswith(b"%PDF-")
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1


def test_the_pdf_shows_the_code_booking_hotel_guest_dates_and_price() -> None:
    event = confirmed()
    code = voucher_code(event.booking_id)
    text = pdf_text(render_voucher_pdf(event, code))
    assert "Hotel voucher" in text
    for expected in (
        code,
        str(event.booking_id),
        "Hotel Aurora",
        "Ada Lovelace",
        "ada@example.com",
        "suite",
        "2030-01-01",
        "2030-01-03",
        "700.00 EUR",
        "2029-12-24",
    ):
        assert expected in text
    assert "VOID" not in text


def test_the_pdf_is_byte_for_byte_the_same_for_the_same_event() -> None:
    event = confirmed()
    assert render_voucher_pdf(event, "V-1") == render_voucher_pdf(event, "V-1")


def test_the_pdf_records_the_event_time_as_its_creation_date() -> None:
    reader = PdfReader(io.BytesIO(render_voucher_pdf(confirmed(), "V-1")))
    assert reader.metadata is not None
    assert reader.metadata.creation_date == datetime(2029, 12, 24, 9, 30, tzinfo=UTC)


def test_a_voided_voucher_says_void_booking_cancelled() -> None:
    event = confirmed()
    text = pdf_text(render_voucher_pdf(event, voucher_code(event.booking_id), voided=True))
    assert "VOID - booking cancelled" in text
    assert voucher_code(event.booking_id) in text


def test_a_large_total_price_is_shown_with_thousands_separators() -> None:
    text = pdf_text(render_voucher_pdf(confirmed(total_price=Decimal("12345.5")), "V-1"))
    assert "12,345.50 EUR" in text


@pytest.mark.skipif(not DEJAVU_INSTALLED, reason="no Unicode TrueType font installed")
def test_a_guest_name_with_non_latin_characters_is_drawn_with_the_unicode_font() -> None:
    event = confirmed(guest_name="Zoë Ødegård Ελένη Жанна", hotel_name="Hôtel Ŝtrand")
    text = pdf_text(render_voucher_pdf(event, "V-1"))
    assert "Zoë Ødegård Ελένη Жанна" in text
    assert "Hôtel Ŝtrand" in text


@pytest.mark.parametrize(
    "guest_name",
    ["李雷", "Zoë 😀 Ødegård", "\u202eevil\u202c", "tab\tand\nnewline\x00", "\ud800", "x" * 2000],
)
def test_any_guest_name_renders_without_error(guest_name: str) -> None:
    # model_copy skips validation: events refuse some of these names (a lone surrogate, 2000
    # characters), but the renderer must not depend on that.
    event = confirmed().model_copy(update={"guest_name": guest_name})
    text = pdf_text(render_voucher_pdf(event, "V-1"))
    assert "V-1" in text


def test_without_a_unicode_font_non_latin1_characters_become_question_marks(
    without_unicode_font: None,
) -> None:
    event = confirmed(guest_name="Zoë 李雷 😀")
    text = pdf_text(render_voucher_pdf(event, "V-1"))
    assert "Zoë ?? ?" in text


def test_a_naive_event_time_is_taken_as_utc() -> None:
    event = confirmed(occurred_at=datetime(2029, 12, 24, 9, 30))
    text = pdf_text(render_voucher_pdf(event, "V-1"))
    assert "2029-12-24" in text


def test_a_latin1_voucher_renders_in_a_few_milliseconds() -> None:
    event = confirmed()
    render_voucher_pdf(event, "V-1")
    started = time.perf_counter()
    for _ in range(20):
        render_voucher_pdf(event, "V-1")
    assert (time.perf_counter() - started) / 20 < 0.05


def test_an_unreadable_font_file_falls_back_to_question_marks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    monkeypatch.setattr(vouchers, "unicode_font", lambda: broken)
    text = pdf_text(render_voucher_pdf(confirmed(guest_name="Zoë 李雷"), "V-1"))
    assert "Zoë ??" in text


DETAILS = StayDetails(
    room_type_name="Aurora suite",
    hotel_address="Rua das Flores 12, 1200-195 Lisboa, Portugal",
    hotel_phone="+351 21 555 0100",
    hotel_email="reception@aurora.example",
    check_in_from=clock(15, 0),
    check_out_until=clock(11, 30),
    cancellation_policy="Free cancellation until 48 hours before check-in.",
)


def test_the_pdf_shows_the_room_type_s_name_the_hotel_s_address_contact_times_policy() -> None:
    text = " ".join(pdf_text(render_voucher_pdf(confirmed(stay_details=DETAILS), "V-1")).split())
    assert "Room type: Aurora suite (suite)" in text
    assert "Address: Rua das Flores 12, 1200-195 Lisboa, Portugal" in text
    assert "+351 21 555 0100" in text
    assert "reception@aurora.example" in text
    assert "Check-in: 2030-01-01, from 15:00" in text
    assert "Check-out: 2030-01-03, until 11:30" in text
    assert "Cancellation: Free cancellation until 48 hours before check-in." in text


def test_an_event_without_stay_details_still_renders_what_it_has() -> None:
    text = pdf_text(render_voucher_pdf(confirmed(), "V-1"))
    assert "Room type: suite" in text
    assert "Address" not in text
    assert "Cancellation" not in text


def test_the_qr_code_on_the_pdf_decodes_to_the_voucher_code() -> None:
    """The image as embedded in the real PDF, read back by pypdf and decoded by zxing-cpp (the
    scanning library the hotel's desk might use), enlarged as a camera would see it."""
    code = voucher_code(UUID("6f1c2b9e-0d4a-4c51-9f0e-2b7a3c8d9e10"))
    reader = PdfReader(io.BytesIO(render_voucher_pdf(confirmed(stay_details=DETAILS), code)))
    [embedded] = reader.pages[0].images
    assert embedded.image is not None
    image = embedded.image.convert("L")
    seen = image.resize((image.width * 8, image.height * 8), Image.Resampling.NEAREST)
    assert [found.text for found in zxingcpp.read_barcodes(seen)] == [code]
    assert [found.format for found in zxingcpp.read_barcodes(seen)] == [
        zxingcpp.BarcodeFormat.QRCode
    ]


def by_fpdf2(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the direct writer could not draw the voucher."""
    monkeypatch.setattr(voucher_pdf, "write", lambda *args, **kwargs: None)


def producer(pdf: bytes) -> str:
    metadata = PdfReader(io.BytesIO(pdf)).metadata
    assert metadata is not None
    return str(metadata.get("/Producer"))


def test_a_latin1_voucher_is_written_directly_and_another_by_fpdf2() -> None:
    assert producer(render_voucher_pdf(confirmed(stay_details=DETAILS), "V-1")) == "hotel-booking"
    assert producer(render_voucher_pdf(confirmed(guest_name="李雷"), "V-1")) == "None"
    # A word wider than its column is broken inside by fpdf2, which the direct writer leaves.
    assert producer(render_voucher_pdf(confirmed(guest_name="x" * 200), "V-1")) == "None"


@pytest.mark.parametrize("voided", [False, True])
def test_whichever_writer_draws_it_the_voucher_reads_the_same(
    voided: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = "Free cancellation until 48 hours before check-in; later, " * 3
    event = confirmed(
        stay_details=DETAILS.model_copy(update={"cancellation_policy": policy}),
        guest_name="Zoë O'Brien (Ødegård) \\ back",
    )
    code = voucher_code(event.booking_id)
    direct = render_voucher_pdf(event, code, voided=voided)
    by_fpdf2(monkeypatch)
    drawn = render_voucher_pdf(event, code, voided=voided)
    assert producer(direct) == "hotel-booking"
    assert producer(drawn) == "None"  # fpdf2 names none
    assert pdf_text(direct).split() == pdf_text(drawn).split()
    metadata = [PdfReader(io.BytesIO(pdf)).metadata for pdf in (direct, drawn)]
    assert [(m.title, m.author, m.creation_date) for m in metadata if m] == [
        (f"Hotel voucher {code}", "Hotel booking", datetime(2029, 12, 24, 9, 30, tzinfo=UTC))
    ] * 2


def test_the_direct_writer_is_several_times_cheaper_than_fpdf2(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = confirmed(stay_details=DETAILS)

    def cost() -> float:
        render_voucher_pdf(event, "V-1")
        started = time.perf_counter()
        for _ in range(30):
            render_voucher_pdf(event, "V-1")
        return time.perf_counter() - started

    direct = cost()
    by_fpdf2(monkeypatch)
    assert direct < cost() / 2
