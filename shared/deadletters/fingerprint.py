"""A failure's fingerprint: what the dead-letter console groups parked messages by.

Two dead letters belong together when the same consumer failed on the same event type and
version, with the same exception type, in the same handler frame, for the same reason once
the ids, addresses and numbers in that reason are normalised away ("SMTP refused
ada@example.com: 550" and "SMTP refused bob@example.org: 550" are one failure, twice).
"""

from __future__ import annotations

import hashlib
import re

# Most specific first: a UUID holds hex digits and numbers, an address holds numbers.
_PATTERNS = [
    (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "<id>",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), "<ip>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
]
# Long reasons (a server's whole answer) would make every group unique past this point.
MAX_REASON = 300


def normalise(reason: str) -> str:
    """``reason`` with ids, addresses and numbers replaced by placeholders, spaces folded."""
    text = " ".join(reason.split())[:MAX_REASON]
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text


def fingerprint(
    consumer: str,
    event_type: str | None,
    event_version: int | None,
    exception_type: str | None,
    frame: str | None,
    reason: str,
) -> str:
    """16 hex digits naming the group; the parts are kept beside it for display."""
    parts = [consumer, event_type or "", str(event_version or ""), exception_type or ""]
    parts += [frame or "", normalise(reason)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
