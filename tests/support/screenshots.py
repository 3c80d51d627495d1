"""Where a browser test writes its screenshots: the README's folder under docs/ when asked to
refresh them (UPDATE_SCREENSHOTS=1), else tests/artifacts/ (ignored by git), so a test run
leaves the tree clean."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def screenshot_folder(name: str) -> Path:
    refresh = os.environ.get("UPDATE_SCREENSHOTS") == "1"
    return ROOT / "docs" / name if refresh else ROOT / "tests" / "artifacts" / name
