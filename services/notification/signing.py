"""HMAC signatures of webhook bodies, and the push topic of a booking.

Every webhook carries ``X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``, the HMAC keyed
with ``NOTIFICATION_WEBHOOK_SECRET`` over ``"<t>.<body>"`` (the scheme Stripe uses). The
timestamp is signed with the body, so a captured request cannot be replayed later than the
receiver's tolerance (:data:`DEFAULT_TOLERANCE`, 5 minutes) with a fresh time; within it, the
``X-Event-Id`` the receiver deduplicates on makes a replay harmless. Each attempt is signed
when it is sent, so a retry an hour later is fresh too.

A webhook receiver checks a delivery with :func:`verify_signature`::

    if not verify_signature(await request.body(), request.headers["X-Signature"], SECRET):
        return Response(status_code=401)

The signature covers the exact bytes of the body, so verify before parsing the JSON.
Several ``v1=`` entries may be present (one per secret, while a secret is being rotated);
one matching is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from uuid import UUID

SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300  # seconds a signature stays acceptable, either side of now
TOPIC_PREFIX = "booking-"
TOPIC_HEX_CHARS = 20
_HEX_DIGITS = frozenset("0123456789abcdef")


def _hmac_hex(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def _signed_payload(timestamp: int, body: bytes) -> bytes:
    return f"{timestamp}.".encode() + body


def sign(body: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The ``X-Signature`` header value of ``body``, signed now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},{SIGNATURE_VERSION}={_hmac_hex(secret, _signed_payload(t, body))}"


def _parse(header: str) -> tuple[int, list[str]] | None:
    """The timestamp and the v1 digests of a header, or None when it is malformed."""
    timestamp: int | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, separator, value = part.strip().partition("=")
        if not separator:
            return None
        if key == "t":
            if timestamp is not None or not (value.isascii() and value.isdigit()):
                return None
            timestamp = int(value)
        elif key == SIGNATURE_VERSION:
            digest = value.lower()
            if len(digest) != 64 or not set(digest) <= _HEX_DIGITS:
                return None
            digests.append(digest)
        # Other keys (a future scheme) are ignored, as Stripe's receivers do.
    if timestamp is None or not digests:
        return None
    return timestamp, digests


def verify_signature(
    body: bytes,
    header: str,
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (an ``X-Signature`` value) signs ``body`` with ``secret`` at a time
    within ``tolerance`` seconds of ``now``. Constant-time in the digest; False for anything
    malformed."""
    parsed = _parse(header)
    if parsed is None:
        return False
    timestamp, digests = parsed
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = _hmac_hex(secret, _signed_payload(timestamp, body)).encode()
    # Every candidate compared, so the time taken does not say which one matched.
    matches = [hmac.compare_digest(expected, digest.encode()) for digest in digests]
    return any(matches)


def ntfy_topic(booking_id: UUID, secret: str) -> str:
    """The push topic of a booking: stable, but not guessable without the secret."""
    return TOPIC_PREFIX + _hmac_hex(secret, str(booking_id).encode())[:TOPIC_HEX_CHARS]
