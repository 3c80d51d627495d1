"""Messages no consumer can handle, one per way a careless or hostile publisher can send them.
Each must end in every consumer's dead-letter queue with a reason, and none may be held.

Every message carries a marker header first (before anything that could stop a decoder
reading on), so a test can find it in a dead-letter queue.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable

from tests.support.hostile import (
    RawProperties,
    long_string,
    nested_arrays,
    persistent,
    short,
    table,
    timestamp,
)

NOT_AN_EVENT = b'{"event_type": "BookingConfirmed", "version": 1}'
# Over the consumers' MAX_MESSAGE_BYTES (1 MiB by default), under the broker's 2 MiB.
HUGE_BODY_BYTES = 1536 * 1024

Entry = tuple[bytes | str, bytes]
Make = Callable[[str, Entry], tuple[bytes, RawProperties]]


def _body(body: bytes) -> Make:
    def make(message_id: str, marker: Entry) -> tuple[bytes, RawProperties]:
        return body, persistent(message_id, table(marker))

    return make


def _headers(*entries: tuple[bytes | str, bytes]) -> Make:
    def make(message_id: str, marker: Entry) -> tuple[bytes, RawProperties]:
        return NOT_AN_EVENT, persistent(message_id, table(marker, *entries))

    return make


def _property(name: str, raw: bytes) -> Make:
    def make(message_id: str, marker: Entry) -> tuple[bytes, RawProperties]:
        return NOT_AN_EVENT, persistent(message_id, table(marker), **{name: raw})

    return make


def _message_id_not_utf8(message_id: str, marker: Entry) -> tuple[bytes, RawProperties]:
    return NOT_AN_EVENT, persistent(b"\xff\xfe" + message_id.encode()[:30], table(marker))


def _int(kind: bytes, fmt: str, value: int) -> bytes:
    return kind + struct.pack(fmt, value)


POISON: dict[str, Make] = {
    "integer-of-5000-digits": _body(b'{"event_id": ' + b"9" * 5000 + b"}"),
    "arrays-nested-100000-deep": _body(b"[" * 100_000 + b"]" * 100_000),
    "body-over-the-size-limit": _body(
        json.dumps({"event_type": "BookingConfirmed", "pad": "x" * HUGE_BODY_BYTES}).encode()
    ),
    "body-not-utf8": _body(b"\xff\xfe\x00 not json"),
    "header-name-not-utf8": _headers((b"x-\xff\xfe", long_string("v"))),
    "header-value-not-utf8": _headers(("x-note", long_string(b"\xff\xfe\xfd"))),
    "message-id-not-utf8": _message_id_not_utf8,
    "type-not-utf8": _property("type", short(b"Booking\xffConfirmed")),
    "timestamp-past-any-calendar": _property("timestamp", struct.pack(">Q", 2**64 - 1)),
    "header-timestamp-past-any-calendar": _headers(("x-when", timestamp(2**64 - 1))),
    "header-arrays-nested-5000-deep": _headers(("x-deep", nested_arrays(5000))),
    "header-double-too-large-to-copy": _headers(("x-big", b"d" + struct.pack(">d", 1e300))),
    "wrong-header-types": _headers(
        ("x-attempts", long_string("three")),
        ("x-replay-attempts-base", _int(b"I", ">i", -5)),
        ("x-replay-count", _int(b"l", ">q", 2**63 - 1)),
        ("x-first-failure-at", _int(b"I", ">i", 12)),
        ("traceparent", b"F" + table(("a", long_string("b")))),
        ("x-death", long_string("not a list")),
    ),
    "attempts-at-the-64-bit-limit": _headers(("x-attempts", _int(b"l", ">q", 2**63 - 1))),
}


# RabbitMQ 3.10 itself refuses this one (it closes the publisher's connection with
# INTERNAL_ERROR), so it never reaches a consumer; tests/unit/test_amqp_codec.py decodes it.
REFUSED_BY_THE_BROKER: dict[str, Make] = {
    "header-of-unknown-type": _headers(("x-odd", b"Z\x00\x00\x00\x00")),
}


def poison_message(
    kind: str, message_id: str, marker_name: str, label: str
) -> tuple[bytes, RawProperties]:
    """The message of ``kind``, marked with header ``marker_name: label``."""
    return POISON[kind](message_id, (marker_name, long_string(label)))
