"""The voucher drawn with fpdf2: what shared/vouchers.py falls back to when the direct writer
(shared/voucher_pdf.py) cannot write it, e.g. a value outside latin-1, drawn with the embedded
Unicode font. Imported only then: fpdf2 brings fontTools and Pillow, about 40 MB."""

from __future__ import annotations

import io
from collections.abc import Container
from datetime import datetime

from fpdf import FPDF
from fpdf.fonts import TTFFont

from shared import voucher_pdf, vouchers
from shared.voucher_pdf import Line
from shared.vouchers import LATIN1, QR_SIZE, clean_text, needs_unicode

_CORE = "Helvetica"
_UNICODE = "VoucherUnicode"


def draw_with_fpdf(
    sections: tuple[list[Line], list[Line], list[Line]],
    qr_png: bytes,
    unicode_values: bool,
    info: tuple[str, str, datetime],
) -> bytes:
    """The voucher's ``sections`` (notice, beside the QR code, fields) as PDF bytes; ``info``
    is (title, author, creation date)."""
    title, author, created = info
    pdf = _Voucher(unicode_values=unicode_values)
    pdf.set_creation_date(created)
    pdf.set_title(title)
    pdf.set_author(author)
    notice, beside, fields = sections
    pdf.draw(notice)
    if notice:
        pdf.ln(voucher_pdf.NOTICE_GAP)
    top = pdf.get_y()
    # The QR code at the top right, beside the title and the code it encodes.
    pdf.image(io.BytesIO(qr_png), x=pdf.w - pdf.r_margin - QR_SIZE, y=top, w=QR_SIZE)
    pdf.draw(beside)
    pdf.set_y(max(pdf.get_y(), top + QR_SIZE) + 4)
    pdf.draw(fields)
    return bytes(pdf.output())


class _Voucher(FPDF):
    """One A4 page; values outside latin-1 switch to the embedded Unicode font."""

    def __init__(self, unicode_values: bool) -> None:
        super().__init__(format="A4")
        self.set_margins(20, 20, 20)
        self.set_auto_page_break(auto=True, margin=20)
        self.add_page()
        self._drawable: Container[int] = LATIN1
        font = vouchers.unicode_font() if unicode_values else None
        if font is not None:
            try:
                self.add_font(_UNICODE, fname=str(font))
            except Exception:  # an unreadable font file: fall back to "?"
                return
            added = self.fonts[_UNICODE.lower()]
            if isinstance(added, TTFFont):
                self._drawable = added.cmap

    def draw(self, lines: list[Line]) -> None:
        for line in lines:
            if line.space:
                self.ln(line.space)
            self.set_text_color(200 if line.red else 0, 0, 0)
            if line.label is None:
                self.para(line.text, size=line.size, bold=line.bold, h=line.h)
            else:
                self.field(line.label, line.text)

    def para(self, text: str, *, size: float = 11, bold: bool = False, h: float = 7) -> None:
        """A full-width paragraph in the core font (for text we write ourselves)."""
        self.set_font(_CORE, "B" if bold else "", size)
        self._rest_of_line(h, clean_text(text, LATIN1))

    def field(self, label: str, value: str) -> None:
        """A ``label: value`` row; the value wraps and may need the Unicode font."""
        self.set_font(_CORE, "B", 11)
        self.cell(45, 7, f"{label}:")
        use_unicode = self._drawable is not LATIN1 and needs_unicode(value)
        self.set_font(_UNICODE if use_unicode else _CORE, "", 11)
        drawable = self._drawable if use_unicode else LATIN1
        self._rest_of_line(7, clean_text(value, drawable))

    def _rest_of_line(self, h: float, text: str) -> None:
        """``text`` up to the right margin, wrapped only when it does not fit (faster)."""
        if self.get_string_width(text) < self.w - self.r_margin - self.x:
            self.cell(0, h, text, new_x="LMARGIN", new_y="NEXT")
        else:
            self.multi_cell(0, h, text, align="L", new_x="LMARGIN", new_y="NEXT")
