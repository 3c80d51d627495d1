"""Management tokens: random, long, URL-safe; only the hash is kept, and a token is checked
against every hash of its booking."""

from __future__ import annotations

import hashlib
import re

from services.booking.tokens import holds, new_token, token_hash


def test_a_token_has_256_random_bits_in_url_safe_characters_and_its_hash_is_sha256() -> None:
    tokens = [new_token() for _ in range(100)]
    assert len({token for token, _ in tokens}) == 100
    for token, digest in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # 32 bytes, base64url, unpadded
        assert digest == hashlib.sha256(token.encode()).digest() != token.encode()


def test_a_token_is_held_when_it_matches_any_of_the_booking_hashes() -> None:
    first, replayed = new_token(), new_token()
    stored = [first[1], replayed[1]]
    assert holds(first[0], stored)
    assert holds(replayed[0], stored)
    assert not holds(new_token()[0], stored)
    assert not holds(None, stored)
    assert not holds("", stored)
    assert not holds(first[0], [])
    assert not holds(first[1].hex(), stored)  # the hash itself is no token
    assert token_hash(first[0]) == first[1]
