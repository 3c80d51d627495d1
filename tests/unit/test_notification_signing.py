"""Webhook signatures and push topics."""

from __future__ import annotations

import hashlib
import hmac
import re
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.notification.signing import DEFAULT_TOLERANCE, ntfy_topic, sign, verify_signature

BODY = b'{"event_type":"BookingConfirmed","version":1}'
BOOKING = UUID("6f1c2a4e-1d2b-4c3d-9e8f-0a1b2c3d4e5f")


NOW = 1_790_000_000


def test_a_signature_is_the_hex_hmac_sha256_of_the_timestamp_a_dot_and_the_body() -> None:
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, "s3cret", timestamp=NOW) == f"t={NOW},v1={expected}"


def test_a_signature_is_made_at_the_current_time() -> None:
    before = int(time.time())
    header = sign(BODY, "s3cret")
    stamp = int(header.split(",")[0].removeprefix("t="))
    assert before <= stamp <= time.time()


def test_verify_signature_accepts_the_signature_of_the_same_body_and_secret() -> None:
    assert verify_signature(BODY, sign(BODY, "s3cret"), "s3cret")
    header = sign(BODY, "s3cret", timestamp=NOW)
    assert verify_signature(
        BODY, " " + header.upper().replace("T=", "t=").replace("V1", "v1"), "s3cret", now=NOW
    )


def test_any_of_several_v1_digests_may_match_as_while_a_secret_is_rotated() -> None:
    old, new = sign(BODY, "old", timestamp=NOW), sign(BODY, "new", timestamp=NOW)
    both = f"{old},{new.split(',')[1]}"
    assert verify_signature(BODY, both, "old", now=NOW)
    assert verify_signature(BODY, both, "new", now=NOW)
    assert not verify_signature(BODY, both, "other", now=NOW)


@pytest.mark.parametrize(
    ("body", "secret"), [(BODY, "another secret"), (BODY + b" ", "s3cret"), (b"", "s3cret")]
)
def test_verify_signature_rejects_another_secret_or_a_changed_body(
    body: bytes, secret: str
) -> None:
    assert not verify_signature(body, sign(BODY, "s3cret", timestamp=NOW), secret, now=NOW)


@pytest.mark.parametrize("age", [DEFAULT_TOLERANCE + 1, -DEFAULT_TOLERANCE - 1, 86_400])
def test_verify_signature_rejects_a_timestamp_outside_the_tolerance(age: int) -> None:
    header = sign(BODY, "s3cret", timestamp=NOW)
    assert verify_signature(BODY, header, "s3cret", now=NOW + DEFAULT_TOLERANCE)
    assert not verify_signature(BODY, header, "s3cret", now=NOW + age)
    assert verify_signature(BODY, header, "s3cret", now=NOW + age, tolerance=abs(age))


def test_a_replayed_request_with_a_fresh_timestamp_does_not_verify() -> None:
    digest = sign(BODY, "s3cret", timestamp=NOW).split(",")[1]
    assert not verify_signature(BODY, f"t={NOW + 600},{digest}", "s3cret", now=NOW + 600)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "sha256=" + "0" * 64,  # the old scheme, with no timestamp
        f"t={NOW}",
        "v1=" + "0" * 64,
        f"t={NOW},v1=",
        f"t={NOW},v1=zz",
        f"t={NOW},v1=é",
        f"t=abc,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},,v1={'0' * 64}",
    ],
)
def test_verify_signature_rejects_malformed_headers_without_raising(header: str) -> None:
    assert not verify_signature(BODY, header, "s3cret", now=NOW)


def test_the_push_topic_is_booking_and_20_hex_chars_of_the_hmac_of_the_booking_id() -> None:
    digest = hmac.new(b"s3cret", str(BOOKING).encode(), hashlib.sha256).hexdigest()
    topic = ntfy_topic(BOOKING, "s3cret")
    assert topic == f"booking-{digest[:20]}"
    assert ntfy_topic(BOOKING, "s3cret") == topic
    assert ntfy_topic(BOOKING, "other") != topic
    assert ntfy_topic(UUID(int=BOOKING.int + 1), "s3cret") != topic


def documented_verify(readme: Path) -> Callable[[bytes, str, str], bool]:
    """The ``verify`` of the stdlib example in ``readme``, as a receiver would paste it."""
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", readme.read_text(), re.M | re.S)
    [code] = [c for _, c in blocks if "def verify(" in c]
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(code), namespace)  # the documentation's own code
    verify: Callable[[bytes, str, str], bool] = namespace["verify"]
    return verify


@pytest.mark.parametrize("readme", ["README.md", "services/notification/README.md"])
def test_the_documented_receiver_example_verifies_what_is_sent_and_refuses_the_rest(
    readme: str,
) -> None:
    verify = documented_verify(Path(__file__).resolve().parents[2] / readme)
    now = int(time.time())
    assert verify(BODY, sign(BODY, "s3cret"), "s3cret")
    assert not verify(BODY, sign(BODY, "s3cret"), "another secret")
    assert not verify(BODY + b" ", sign(BODY, "s3cret"), "s3cret")
    assert not verify(BODY, sign(BODY, "s3cret", timestamp=now - DEFAULT_TOLERANCE - 5), "s3cret")
    assert not verify(BODY, "sha256=" + "0" * 64, "s3cret")
    assert not verify(BODY, f"t=²,v1={'0' * 64}", "s3cret")
