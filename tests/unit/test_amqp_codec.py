"""The tolerant decoding of properties and header tables (shared/messaging/amqp_codec.py), on
the same frames a hostile publisher puts on the wire (tests/support/hostile.py)."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from aio_pika.abc import AbstractIncomingMessage
from pamqp import encode, frame
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from shared.errors import InvalidMessage, MessageTooLarge
from shared.messaging import amqp_codec, retry
from shared.messaging.envelope import copy_message, decode_message
from tests.support.hostile import RawProperties, delivered, long_string, nested_arrays, table
from tests.support.poison import POISON, REFUSED_BY_THE_BROKER, poison_message

HANDLED = frozenset({"BookingConfirmed", "BookingCancelled"})
amqp_codec.install()


def encodes(message: AbstractIncomingMessage, headers: dict[str, Any]) -> bytes:
    """The frame of the copy the runtime would publish (raises if pamqp cannot encode it)."""
    copy = copy_message(message, headers)
    properties: Basic.Properties = copy.properties
    return frame.marshal(ContentHeader(0, len(copy.body), properties), 1)


def failure_headers_of(message: AbstractIncomingMessage) -> dict[str, Any]:
    return retry.failure_headers(
        dict(message.headers or {}),
        error=InvalidMessage("x"),
        attempts=retry.attempts_so_far(dict(message.headers or {})) + 1,
        service="voucher",
        queue="voucher.booking-events",
        reason=retry.REASON_INVALID,
    )


@pytest.mark.parametrize("kind", [*POISON, *REFUSED_BY_THE_BROKER])
def test_every_poison_decodes_is_refused_as_invalid_and_its_copy_encodes(kind: str) -> None:
    make = {**POISON, **REFUSED_BY_THE_BROKER}[kind]
    body, properties = make(str(uuid.uuid4()), ("x-mark", long_string(kind)))
    message = delivered(body, properties)
    with pytest.raises(InvalidMessage) as refused:
        decode_message(message, HANDLED, max_bytes=1024 * 1024)
    assert str(refused.value)
    assert encodes(message, failure_headers_of(message))
    if kind == "body-over-the-size-limit":
        assert isinstance(refused.value, MessageTooLarge)


def test_a_header_name_that_is_not_utf8_is_named_in_the_reason() -> None:
    body, properties = poison_message("header-name-not-utf8", "m-1", "x-mark", "m")
    message = delivered(body, properties)
    assert amqp_codec.damage(message.headers, {}) == "header name 'x-\ufffd\ufffd' is not UTF-8"


def test_headers_after_an_unknown_field_type_are_dropped_not_misread() -> None:
    raw = table(("x-first", long_string("kept")), ("x-odd", b"Z\x00"), ("x-after", b"t\x01"))
    message = delivered(b"{}", RawProperties({"headers": raw}))
    headers = dict(message.headers or {})
    assert headers["x-first"] == "kept"
    assert "x-after" not in headers
    assert "unknown field type b'Z'" in str(amqp_codec.damage(headers, {}))


def test_nesting_deeper_than_the_limit_is_cut_there_without_recursing() -> None:
    message = delivered(b"{}", RawProperties({"headers": table(("x-deep", nested_arrays(50_000)))}))
    reason = amqp_codec.damage(message.headers, {})
    assert reason is not None
    assert f"nested deeper than {amqp_codec.MAX_DEPTH}" in reason


def test_a_timestamp_past_the_calendar_becomes_1970_with_the_reason() -> None:
    raw = RawProperties({"timestamp": struct.pack(">Q", 2**64 - 1)})
    message = delivered(b"{}", raw)
    assert message.timestamp == datetime(1970, 1, 1, tzinfo=UTC)
    assert "out of range" in str(amqp_codec.damage(None, {"timestamp": message.timestamp}))


WELL_FORMED: dict[str, Any] = {
    "x-attempts": 3,
    "x-negative": -70000,
    "x-big": 2**40,
    "x-text": "héllo",
    "x-flag": True,
    "x-none": None,
    "x-decimal": Decimal("12.50"),
    "x-when": datetime(2026, 12, 5, 10, 0, tzinfo=UTC),
    "x-death": [{"count": 1, "queue": "q", "reason": "expired", "routing-keys": ["a", "b"]}],
    "x-nested": {"a": {"b": {"c": [1, [2, [3]]]}}},
    "x-bytes": bytearray(b"\x00\xff"),
}


def test_well_formed_headers_decode_exactly_as_pamqp_decodes_them() -> None:
    raw = encode.field_table(WELL_FORMED)
    message = delivered(b"{}", RawProperties({"headers": raw}))
    assert message.headers == WELL_FORMED
    assert amqp_codec.damage(message.headers, {}) is None


def test_values_pamqp_cannot_encode_again_are_made_encodable() -> None:
    headers = {"x-raw": b"\xff\xfe", "x-float": 1e300, "x-int": 2**70, "x-list": [b"\x00"]}
    fixed = amqp_codec.encodable_headers(headers)
    assert fixed == {"x-raw": bytearray(b"\xff\xfe"), "x-float": "1e+300", "x-int": str(2**70),
                     "x-list": [bytearray(b"\x00")]}  # fmt: skip
    assert encode.field_table(fixed)


def test_a_table_that_ends_inside_a_header_name_is_cut_there() -> None:
    # Found by the fuzz test: a value one byte short, so the next name's length byte runs
    # past the end of the table.
    raw = b"\x00\x00\x00\x1c\nx-attemptsb\nx-attemptsS\x00\x00\x00\x00"
    message = delivered(b"{}", RawProperties({"headers": raw}))
    assert "runs past its table" in str(amqp_codec.damage(message.headers, {}))
