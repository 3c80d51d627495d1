"""Webhook signatures and push topics."""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID

import pytest

from services.notification.signing import ntfy_topic, sign, verify_signature

BODY = b'{"event_type":"BookingConfirmed","version":1}'
BOOKING = UUID("6f1c2a4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f")


def test_a_signature_is_the_hex_hmac_sha256_of_the_body_keyed_with_the_secret() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "s3cret") == f"sha256={expected}"


def test_verify_signature_accepts_the_signature_of_the_same_body_and_secret() -> None:
    assert verify_signature(BODY, sign(BODY, "s3cret"), "s3cret")
    assert verify_signature(
        BODY, " " + sign(BODY, "s3cret").upper().replace("SHA", "sha"), "s3cret"
    )


@pytest.mark.parametrize(
    ("body", "secret"), [(BODY, "another secret"), (BODY + b" ", "s3cret"), (b"", "s3cret")]
)
def test_verify_signature_rejects_another_secret_or_a_changed_body(
    body: bytes, secret: str
) -> None:
    assert not verify_signature(body, sign(BODY, "s3cret"), secret)


@pytest.mark.parametrize(
    "header",
    ["", "sha256", "sha256=", "md5=" + "0" * 32, "sha1=abc", "sha256=zz", "sha256=é", "=abc"],
)
def test_verify_signature_rejects_malformed_headers_without_raising(header: str) -> None:
    assert not verify_signature(BODY, header, "s3cret")


def test_the_push_topic_is_booking_and_20_hex_chars_of_the_hmac_of_the_booking_id() -> None:
    digest = hmac.new(b"s3cret", str(BOOKING).encode(), hashlib.sha256).hexdigest()
    topic = ntfy_topic(BOOKING, "s3cret")
    assert topic == f"booking-{digest[:20]}"
    assert ntfy_topic(BOOKING, "s3cret") == topic
    assert ntfy_topic(BOOKING, "other") != topic
    assert ntfy_topic(UUID(int=BOOKING.int + 1), "s3cret") != topic
