"""The core fonts' widths copied from fpdf2 (shared/helvetica_widths.py) are fpdf2's, and
the processes that render vouchers do not load fpdf2 until a voucher needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared import helvetica_widths

ROOT = Path(__file__).resolve().parents[2]


def test_the_copied_widths_are_what_fpdf2_gives() -> None:
    path = Path(helvetica_widths.__file__)
    text = path.read_text()
    assert helvetica_widths.rewritten(text) == text, (
        "stale: run `python -m shared.helvetica_widths --write`"
    )


def test_the_email_and_voucher_services_start_without_loading_fpdf2() -> None:
    code = (
        "import sys, services.email.bootstrap, services.voucher.bootstrap;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'fpdf', 'fontTools', 'PIL'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
