"""HMAC signatures of webhook bodies, and the push topic of a booking.

A webhook receiver checks a delivery with :func:`verify_signature`::

    if not verify_signature(await request.body(), request.headers["X-Signature"], SECRET):
        return Response(status_code=401)

The signature covers the exact bytes of the body, so verify before parsing the JSON.
Deliveries are at least once: deduplicate on the ``X-Event-Id`` header.
"""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

SIGNATURE_SCHEME = "sha256"
TOPIC_PREFIX = "booking-"
TOPIC_HEX_CHARS = 20


def _hmac_hex(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str) -> str:
    """The ``X-Signature`` header value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return f"{SIGNATURE_SCHEME}={_hmac_hex(secret, body)}"


def verify_signature(body: bytes, header: str, secret: str) -> bool:
    """Whether ``header`` (an ``X-Signature`` value) signs ``body`` with ``secret``.
    Constant-time in the digest; False for anything malformed."""
    scheme, separator, digest = header.strip().partition("=")
    if scheme.lower() != SIGNATURE_SCHEME or not separator:
        return False
    expected = _hmac_hex(secret, body).encode()
    return hmac.compare_digest(expected, digest.strip().lower().encode())


def ntfy_topic(booking_id: UUID, secret: str) -> str:
    """The push topic of a booking: stable, but not guessable without the secret."""
    return TOPIC_PREFIX + _hmac_hex(secret, str(booking_id).encode())[:TOPIC_HEX_CHARS]
