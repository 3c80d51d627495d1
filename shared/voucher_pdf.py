"""The voucher's PDF written directly: one A4 page of Helvetica text and the QR code.

fpdf2 (shared/vouchers.py) lays a page out through its general machinery (a graphics state
copied for every cell, line breaking, an object model serialised at the end): about 2.5 ms
of CPU for a page of twenty lines, which both the voucher and the email consumer paid for
every booking, the largest part of their CPU. A voucher whose values are all latin-1 (nearly
all of them) needs none of that: a content stream of text operators in the two core fonts,
the QR code as an 8-bit grey image, seven objects and their offsets. Anything this writer
does not handle (a value that needs the Unicode font, a word wider than its column, more
than a page) is drawn by fpdf2 as before: :func:`write` then returns None.

The layout is fpdf2's for the same calls: the same margins, cell heights, cell margin and
baseline (half the cell plus 0.3 of the font size), so both writers place lines alike.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.helvetica_widths import HELVETICA, HELVETICA_BOLD

K = 72 / 25.4  # points per millimetre
PAGE_W, PAGE_H = 210.0, 297.0  # A4, mm
MARGIN = 20.0
CELL_MARGIN = 1.0  # fpdf2's c_margin
LABEL_W = 45.0
NOTICE_GAP = 4.0  # mm between the void notice and the rest
_WIDTHS = {
    bold: {chr(code): width for code, width in enumerate(table)}
    for bold, table in ((False, HELVETICA), (True, HELVETICA_BOLD))
}


@dataclass(frozen=True)
class Line:
    """A paragraph (``label`` None: the full width) or a ``label: value`` row; ``space`` is
    the gap (mm) left before it, ``red`` draws it in the voided voucher's colour. The text
    is latin-1 and printable (shared/vouchers.py cleans it)."""

    text: str
    size: float = 11
    bold: bool = False
    h: float = 7
    label: str | None = None
    space: float = 0
    red: bool = False


def width_mm(text: str, size: float, bold: bool) -> float:
    widths = _WIDTHS[bold]
    return sum(widths[c] for c in text) * size / 1000 / K


def _wrap(text: str, size: float, bold: bool, room: float) -> list[str] | None:
    """``text`` in lines no wider than ``room`` (mm), broken at spaces; None when a word
    alone is wider (fpdf2 breaks it inside: left to it)."""
    if width_mm(text, size, bold) < room:
        return [text]
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if width_mm(candidate, size, bold) <= room:
            current = candidate
        elif width_mm(word, size, bold) > room:
            return None
        else:
            lines.append(current)
            current = word
    return [*lines, current]


def _escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def _text(x: float, top: float, h: float, size: float, bold: bool, text: str) -> bytes:
    baseline = top + 0.5 * h + 0.3 * size / K
    font = b"/F2" if bold else b"/F1"
    return b"BT %s %.2f Tf %.2f %.2f Td (%s) Tj ET\n" % (
        font,
        size,
        (x + CELL_MARGIN) * K,
        (PAGE_H - baseline) * K,
        _escape(text),
    )


class _Page:
    """Lines laid top down, as fpdf2's cells would be."""

    def __init__(self) -> None:
        self.y = MARGIN
        self.ops: list[bytes] = []

    def draw(self, lines: Sequence[Line]) -> bool:
        """False when a line cannot be drawn here (see the module's doc)."""
        for line in lines:
            self.y += line.space
            x, room = MARGIN, PAGE_W - 2 * MARGIN
            if line.label is not None:
                label = f"{line.label}:"
                self.ops.append(_text(x, self.y, line.h, line.size, True, label))
                x, room = MARGIN + LABEL_W, room - LABEL_W
            wrapped = _wrap(line.text, line.size, line.bold, room - 2 * CELL_MARGIN)
            if wrapped is None or self.y + line.h * len(wrapped) > PAGE_H - MARGIN:
                return False
            self.ops.append(b"0.784 0 0 rg\n" if line.red else b"0 g\n")
            for text in wrapped:
                self.ops.append(_text(x, self.y, line.h, line.size, line.bold, text))
                self.y += line.h
        return True


def write(
    sections: tuple[Sequence[Line], Sequence[Line], Sequence[Line]],
    qr_rows: Sequence[bytes],
    qr_size: float,
    info: tuple[str, str, datetime],
) -> bytes | None:
    """The page: ``sections`` are the notice above (if any), the lines beside the QR code
    (``qr_rows``, a grey byte a module, drawn ``qr_size`` mm wide at the top right) and the
    fields below it; ``info`` the title, author and creation time (UTC). None when this
    writer cannot draw it."""
    page = _Page()
    notice, beside, fields = sections
    if not page.draw(notice):
        return None
    top = page.y = page.y + (NOTICE_GAP if notice else 0)
    if not page.draw(beside):
        return None
    page.y = max(page.y, top + qr_size) + 4
    if not page.draw(fields):
        return None
    place = b"q %.2f 0 0 %.2f %.2f %.2f cm /I1 Do Q\n" % (
        qr_size * K,
        qr_size * K,
        (PAGE_W - MARGIN - qr_size) * K,
        (PAGE_H - top - qr_size) * K,
    )
    return _assemble(_objects(zlib.compress(place + b"".join(page.ops)), qr_rows, info))


def _objects(content: bytes, rows: Sequence[bytes], info: tuple[str, str, datetime]) -> list[bytes]:
    title, author, created = info
    image = zlib.compress(b"".join(rows))
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>"
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /Font << "
        b"/F1 4 0 R /F2 5 0 R >> /XObject << /I1 6 0 R >> >> /Contents 7 0 R >>"
        % (PAGE_W * K, PAGE_H * K),
        font % b"Helvetica",
        font % b"Helvetica-Bold",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
        % (len(rows[0]), len(rows), len(image), image),
        b"<< /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Title (%s) /Author (%s) /Producer (hotel-booking) /CreationDate (D:%sZ) >>"
        % (_escape(title), _escape(author), created.strftime("%Y%m%d%H%M%S").encode()),
    ]


def _assemble(objects: Sequence[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(out)
