"""Management tokens: the credential for a booking's guest details, voucher and cancellation.

A token is 256 random bits, URL-safe, handed to the client once (in the answer to
``POST /bookings``). Only its SHA-256 is stored: a token is random and long, so an unsalted,
fast hash is enough (there is nothing to guess a dictionary from), and a leaked table gives
no working token. An Idempotency-Key replay of the booking gets a new token, stored beside
the first, because the first cannot be recovered from its hash.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

TOKEN_BYTES = 32  # 256 bits; token_urlsafe gives 43 characters


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> tuple[str, bytes]:
    """A fresh token and the hash to store."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def holds(token: str | None, stored: Iterable[bytes]) -> bool:
    """Whether ``token`` is one of the booking's. Every stored hash is compared, each in
    constant time, so the answer's timing tells nothing about how close a guess was."""
    if token is None:
        return False
    given = token_hash(token)
    found = False
    for digest in stored:
        found |= secrets.compare_digest(given, bytes(digest))
    return found
