"""Glyph widths of the PDF core fonts Helvetica and Helvetica-Bold (thousandths of the font
size, by latin-1 code), for shared/voucher_pdf.py to lay lines out.

GENERATED from fpdf2's ``fpdf.fonts.CORE_FONTS_CHARWIDTHS`` (Adobe's metrics of the core
fonts) by ``python -m shared.helvetica_widths --write``; tests/unit/test_helvetica_widths.py
regenerates it and compares. It is copied rather than imported because importing anything of
fpdf2 loads all of it (fontTools, Pillow): about 40 MB of every email and voucher process
that only the rare non-latin-1 voucher needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

# fmt: off
# BEGIN GENERATED
HELVETICA = (
    278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278,
    278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278,
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 350,
    556, 350, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 350, 611, 350,
    350, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 350, 500, 667,
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
)
HELVETICA_BOLD = (
    278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278,
    278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278, 278,
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 350,
    556, 350, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 350, 611, 350,
    350, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 350, 500, 667,
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
)
# END GENERATED
# fmt: on


def render() -> str:
    """The generated block, as fpdf2 gives the widths now."""
    from fpdf.fonts import CORE_FONTS_CHARWIDTHS

    def table(name: str, font: str) -> str:
        widths = [CORE_FONTS_CHARWIDTHS[font][chr(code)] for code in range(256)]
        rows = [
            "    " + ", ".join(str(w) for w in widths[i : i + 16]) + "," for i in range(0, 256, 16)
        ]
        return f"{name} = (\n" + "\n".join(rows) + "\n)\n"

    return table("HELVETICA", "helvetica") + table("HELVETICA_BOLD", "helveticaB")


def rewritten(text: str) -> str:
    """``text`` (this module's source) with its generated block replaced by :func:`render`."""
    head, rest = text.split("# BEGIN GENERATED\n", 1)
    _, tail = rest.split("# END GENERATED\n", 1)
    return f"{head}# BEGIN GENERATED\n{render()}# END GENERATED\n{tail}"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    path = Path(__file__)
    path.write_text(rewritten(path.read_text()))
